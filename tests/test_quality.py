"""Quality gate on a small, hand-built DuckDB warehouse.

The warehouse is written by hand (not by ingest or dbt) so these tests pin the gate's own
contract: which tables and columns it reads, what fails, what a failure says, and that
personal data never appears in a failure message or in Data Docs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from core.config import ConfigError
from quality.exports import validate_export
from quality.gate import GateResult, QualityGateFailed, run_gate
from quality.thresholds import Thresholds, ThresholdsError, load_thresholds

REPO_ROOT = Path(__file__).resolve().parent.parent
ALL_LAYERS = ["raw", "identity", "profiles"]

# Planted personal data: must never show up in messages, logs or reports.
PLANTED_EMAIL = "erika.mustermann@example.de"
PLANTED_NAME = "Mustermann"
PLANTED_BAD_EMAIL = "Erika Mustermann Hauptstrasse 5"


def build_warehouse(path: Path, *, customer_number: bool = True) -> Path:
    """A clean warehouse: 40 CRM rows, 30 web events, 2-record profiles, no defects."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA raw")
        # ingest's long form: one row per source and mapped identity field
        con.execute(
            "CREATE TABLE raw._source_registry(source VARCHAR, record_key VARCHAR, "
            "timestamp_column VARCHAR, birth_date_format VARCHAR, field VARCHAR, "
            "column_name VARCHAR)"
        )
        con.execute(
            "INSERT INTO raw._source_registry VALUES "
            "('crm_customers', 'crm_row_id', 'updated_at', '%d.%m.%Y', 'email', 'email'),"
            "('crm_customers', 'crm_row_id', 'updated_at', '%d.%m.%Y', 'last_name', 'nachname'),"
            "('crm_customers', 'crm_row_id', 'updated_at', '%d.%m.%Y', 'customer_number', "
            "'customer_number'),"
            "('crm_customers', 'crm_row_id', 'updated_at', '%d.%m.%Y', 'phone', 'telefon'),"
            "('crm_customers', 'crm_row_id', 'updated_at', '%d.%m.%Y', 'birth_date', "
            "'geburtsdatum'),"
            "('web_events', 'event_id', 'event_ts', NULL, 'anonymous_id', 'anonymous_id'),"
            "('web_events', 'event_id', 'event_ts', NULL, 'email', 'email')"
        )
        con.execute(
            """
            CREATE TABLE raw.crm_customers AS
            SELECT 'crm-' || i AS crm_row_id,
                   'Vorname' || i AS vorname,
                   'Nachname' || i AS nachname,
                   'kunde' || i || '@example.de' AS email,
                   'C' || lpad(CAST(i AS VARCHAR), 5, '0') AS customer_number,
                   CASE WHEN i % 3 > 0 THEN '0171/' || (1000000 + i) END AS telefon,
                   CASE WHEN i % 4 > 0 THEN lpad(CAST(i % 28 + 1 AS VARCHAR), 2, '0')
                        || '.04.1980' END AS geburtsdatum,
                   TIMESTAMP '2026-11-01 10:00' AS updated_at,
                   '/data/landing/crm_customers/kunden_2026-11.csv' AS _source_file,
                   i + 1 AS _row_number,
                   'run-1' AS _run_id,
                   TIMESTAMP '2026-11-01 06:00' AS _loaded_at
            FROM range(40) t(i)
            """
        )
        con.execute(
            f"""
            CREATE TABLE raw.crm_customers__rejected AS
            SELECT 'crm-r' || i AS crm_row_id, 'unparseable date' AS _reason,
                   'crm-r' || i || ';Erika;Mustermann;{PLANTED_EMAIL}' AS _raw_line,
                   'run-1' AS _run_id, TIMESTAMP '2026-11-01 06:00' AS _loaded_at
            FROM range(1) t(i)
            """
        )
        con.execute(
            """
            CREATE TABLE raw.web_events AS
            SELECT 'ev-' || i AS event_id,
                   CASE WHEN i % 2 = 0 THEN 'kunde' || i || '@example.de' END AS email,
                   'anon-' || i AS anonymous_id,
                   TIMESTAMP '2026-11-01 09:00' + to_minutes(i) AS event_ts
            FROM range(30) t(i)
            """
        )
        con.execute(
            """
            CREATE TABLE main.fct_identity_graph AS
            SELECT 'P' || i AS profile_id, 'crm_customers' AS source, 'crm-' || i AS record_id,
                   'C' || lpad(CAST(i AS VARCHAR), 5, '0') AS customer_number
            FROM range(40) t(i)
            UNION ALL
            SELECT 'P' || i, 'web_events', 'ev-' || i, NULL FROM range(30) t(i)
            """
        )
        if not customer_number:
            con.execute("ALTER TABLE main.fct_identity_graph DROP COLUMN customer_number")
        con.execute(
            """
            CREATE TABLE main.dim_profiles AS
            SELECT DISTINCT profile_id, 'Vorname' AS first_name, 'x@example.de' AS email
            FROM main.fct_identity_graph
            """
        )
        con.execute(
            f"""
            CREATE TABLE main.dim_profile_consent AS
            SELECT profile_id, channel,
                   CASE channel WHEN 'email' THEN '{PLANTED_EMAIL}' ELSE 'none' END
                       AS contact_point,
                   channel = 'email' AS is_contactable
            FROM main.dim_profiles
            CROSS JOIN (VALUES ('email'), ('sms'), ('phone'), ('post'), ('online_ads')) c(channel)
            """
        )
    finally:
        con.close()
    return path


def execute(path: Path, *statements: str) -> None:
    con = duckdb.connect(str(path))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return build_warehouse(tmp_path / "build.duckdb")


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    return tmp_path / "reports"


def gate(db: Path, reports: Path, layers: list[str] | None = None, **kwargs) -> GateResult:
    kwargs.setdefault("thresholds", Thresholds())
    kwargs.setdefault("sources_config", db.parent / "no-sources.yml")
    return run_gate(db, layers or ALL_LAYERS, reports, **kwargs)


#: A first load is only held to a loose format floor (quality.yml format_mostly, 0.5); these
#: tests plant a few bad values and check they are caught and named under a strict one.
STRICT_FORMATS = Thresholds(format_mostly=0.95)


def expect_failure(db: Path, reports: Path, layers: list[str], **kwargs) -> QualityGateFailed:
    with pytest.raises(QualityGateFailed) as info:
        gate(db, reports, layers, **kwargs)
    return info.value


def assert_no_pii(text: str) -> None:
    for planted in (PLANTED_EMAIL, PLANTED_NAME, PLANTED_BAD_EMAIL, "Vorname", "Nachname"):
        assert planted not in text, f"personal data {planted!r} leaked"


def reports_text(reports: Path) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in reports.rglob("*")
        if p.is_file() and p.suffix in {".html", ".json"}
    )


# ------------------------------------------------------------------ clean warehouse


def test_clean_warehouse_passes_every_layer_and_writes_data_docs(
    warehouse: Path, reports: Path
) -> None:
    result = gate(warehouse, reports, run_id="clean")

    assert result.success
    assert result.layers == tuple(ALL_LAYERS)
    for layer, (passed, failed) in result.by_layer().items():
        assert failed == 0, layer
        assert passed > 0, layer
    suites = {s.suite for s in result.suites}
    assert {
        "raw.crm_customers",
        "raw.crm_customers.load",
        "raw.web_events",
        "identity.fct_identity_graph",
        "identity.fct_identity_graph.clusters",
        "identity.fct_identity_graph.customer_numbers",
        "profiles.dim_profiles",
    } <= suites
    assert result.data_docs_index == (reports / "data_docs" / "index.html").resolve()
    assert result.data_docs_index.is_file()
    assert "raw.web_events__rejected not found" in " ".join(result.notes)
    assert not (REPO_ROOT / "gx").exists()


@pytest.mark.integration  # two gates in threads, ~8 s
def test_gate_runs_twice_in_one_process_and_concurrently(warehouse: Path, reports: Path) -> None:
    first = gate(warehouse, reports)
    second = gate(warehouse, reports)
    assert first.success and second.success
    assert [(s.suite, s.passed) for s in first.suites] == [
        (s.suite, s.passed) for s in second.suites
    ]

    outcomes: list[GateResult | BaseException] = []

    def worker() -> None:
        try:
            outcomes.append(gate(warehouse, reports, run_id="parallel"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(o, GateResult) and o.success for o in outcomes), outcomes


@pytest.mark.integration  # gate plus a subprocess, > 2 s
def test_gate_holds_no_lock_after_returning(warehouse: Path, reports: Path) -> None:
    gate(warehouse, reports)
    script = textwrap.dedent(
        f"""
        import duckdb
        con = duckdb.connect({str(warehouse)!r})
        con.execute("CREATE TABLE main.after_gate AS SELECT 1 AS x")
        con.close()
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # and in this process, read-write, too
    execute(warehouse, "DROP TABLE main.after_gate")


def test_gate_still_releases_the_file_when_it_fails(warehouse: Path, reports: Path) -> None:
    execute(warehouse, "INSERT INTO main.dim_profiles VALUES ('P1', 'x', 'x@example.de')")
    expect_failure(warehouse, reports, ["profiles"])
    execute(warehouse, "DELETE FROM main.dim_profiles WHERE first_name = 'x'")


# --------------------------------------------------------------------- raw layer


def test_null_record_key_fails_raw_without_leaking_pii(warehouse: Path, reports: Path) -> None:
    execute(
        warehouse,
        f"UPDATE raw.crm_customers SET crm_row_id = NULL, email = '{PLANTED_EMAIL}', "
        f"nachname = '{PLANTED_NAME}' WHERE crm_row_id = 'crm-7'",
    )
    error = expect_failure(warehouse, reports, ["raw"])

    message = str(error)
    assert "expect_column_values_to_not_be_null" in message
    assert "crm_row_id" in message
    [failure] = error.result.failures
    assert failure.suite == "raw.crm_customers"
    assert failure.table == "raw.crm_customers"
    assert failure.column == "crm_row_id"
    assert failure.observed.startswith("1 of 40 rows unexpected")
    # a null key has no value to show: the example is the row's file and row number
    assert failure.examples == ("kunden_2026-11.csv row 8 (null crm_row_id)",)
    assert_no_pii(message)
    assert_no_pii(reports_text(reports))


def test_bad_emails_fail_raw_with_record_keys_as_examples(warehouse: Path, reports: Path) -> None:
    execute(
        warehouse,
        f"UPDATE raw.crm_customers SET email = '{PLANTED_BAD_EMAIL}' "
        "WHERE crm_row_id IN ('crm-3', 'crm-4', 'crm-5')",
    )
    error = expect_failure(warehouse, reports, ["raw"], thresholds=STRICT_FORMATS)

    [failure] = error.result.failures
    assert failure.expectation_type == "expect_column_values_to_match_regex"
    assert failure.column == "email"
    assert failure.examples == ("crm-3", "crm-4", "crm-5")
    assert "3 of 40" in failure.observed
    assert "crm-3, crm-4, crm-5" in str(error)
    assert_no_pii(str(error))
    assert_no_pii(reports_text(reports))


def test_a_few_bad_emails_pass_under_mostly(warehouse: Path, reports: Path) -> None:
    execute(warehouse, "UPDATE raw.crm_customers SET email = 'n/a' WHERE crm_row_id = 'crm-3'")
    assert gate(warehouse, reports, ["raw"]).success  # 1 of 40 = 2.5% < 5%


def test_quarantine_share_of_latest_load_over_threshold_fails(
    warehouse: Path, reports: Path
) -> None:
    execute(
        warehouse,
        "INSERT INTO raw.crm_customers__rejected SELECT 'crm-r' || i, 'bad row', "
        f"'{PLANTED_EMAIL}', 'run-1', TIMESTAMP '2026-11-01 06:00' FROM range(1, 5) t(i)",
    )
    error = expect_failure(warehouse, reports, ["raw"])

    [failure] = error.result.failures
    assert failure.suite == "raw.crm_customers.load"
    assert failure.expectation_type == "expect_column_max_to_be_between"
    assert failure.column == "rejected_share"
    assert failure.observed.startswith("0.1111")  # 5 of 45 rows
    assert failure.examples and set(failure.examples) <= {f"crm-r{i}" for i in range(5)}
    assert_no_pii(str(error))
    assert_no_pii(reports_text(reports))


def add_crm_load(db: Path, run_id: str, day: int, rows: int, rejected: int = 0) -> None:
    """Append one more CRM load (ingest's _run_id / _loaded_at) to the raw tables, and its
    delivery to the load ledger as ingest writes it (the first load's too, once)."""
    from ingest.ledger import ensure_raw_schema

    at = f"TIMESTAMP '2026-11-{day:02d} 06:00'"
    con = duckdb.connect(str(db))
    try:
        ensure_raw_schema(con)
        ledger = ("INSERT INTO raw._load_ledger (source, file_name, file_sha256, rows_in_file, "
                  "rows_loaded, rows_rejected, run_id, loaded_at, rows_known_key, "
                  "first_record_at, last_record_at) ")
        if not con.execute("SELECT count(*) FROM raw._load_ledger").fetchone()[0]:
            con.execute(ledger + "VALUES ('crm_customers', 'kunden_2026-11.csv', 'sha-1', 41, "
                        "40, 1, 'run-1', TIMESTAMP '2026-11-01 06:00', 0, "
                        "TIMESTAMP '2026-11-01 10:00', TIMESTAMP '2026-11-01 10:00')")
        con.execute(ledger + f"VALUES ('crm_customers', 'f-{run_id}.csv', 'sha-{run_id}', "
                    f"{rows + rejected}, {rows}, {rejected}, '{run_id}', {at}, 0, {at}, {at})")
    finally:
        con.close()
    execute(
        db,
        f"INSERT INTO raw.crm_customers SELECT '{run_id}-' || i, 'V', 'N', "
        f"'k{run_id}' || i || '@example.de', 'C9' || i, NULL, NULL, {at}, "
        f"'f-{run_id}.csv', i + 1, '{run_id}', {at} "
        f"FROM range({rows}) t(i)",
        f"INSERT INTO raw.crm_customers__rejected SELECT '{run_id}-r' || i, 'bad', 'x', "
        f"'{run_id}', {at} FROM range({rejected}) t(i)",
    )


def test_only_the_latest_load_counts_for_quarantine(warehouse: Path, reports: Path) -> None:
    add_crm_load(warehouse, "run-2", day=2, rows=10, rejected=30)  # a bad load ...
    add_crm_load(warehouse, "run-3", day=3, rows=40)  # ... followed by a good one
    assert gate(warehouse, reports, ["raw"]).success


def published_after_first_load(tmp_path: Path) -> Path:
    """A previous publication, made after the first loads (2026-11-01 06:00)."""
    previous = build_warehouse(tmp_path / "published.duckdb")
    execute(previous, "CREATE TABLE main._publication AS SELECT 'run-1' AS run_id, "
                      "TIMESTAMP '2026-11-01 12:00' AS published_at")
    return previous


def test_raw_rows_a_publication_passed_are_not_checked_again(
    tmp_path: Path, warehouse: Path, reports: Path
) -> None:
    """Raw is append-only: rows loaded before the previous publication passed its gate, so a
    daily gate reads the day's loads, not the whole history (unless it rechecks)."""
    previous = published_after_first_load(tmp_path)
    execute(warehouse, f"UPDATE raw.crm_customers SET email = '{PLANTED_BAD_EMAIL}' "
                       "WHERE crm_row_id IN ('crm-3', 'crm-4', 'crm-5')")
    assert gate(warehouse, reports, ["raw"], thresholds=STRICT_FORMATS,
                previous_db=previous).success
    rechecked = expect_failure(warehouse, reports, ["raw"], thresholds=STRICT_FORMATS,
                               previous_db=previous, recheck_raw=True)
    assert [f.examples for f in rechecked.result.failures] == [("crm-3", "crm-4", "crm-5")]

    # a later load is checked, and judged against the earlier loads' (sampled) baseline
    add_crm_load(warehouse, "run-2", day=2, rows=40)
    execute(warehouse, f"UPDATE raw.crm_customers SET email = '{PLANTED_BAD_EMAIL}' "
                       "WHERE crm_row_id IN ('run-2-1', 'run-2-2', 'run-2-3')")
    error = expect_failure(warehouse, reports, ["raw"], thresholds=STRICT_FORMATS,
                           previous_db=previous)
    [failure] = error.result.failures
    assert failure.suite == "raw.crm_customers.formats"
    assert failure.examples == ("run-2-1", "run-2-2", "run-2-3")
    assert "3 of 40" in failure.observed
    assert failure.context == "0.93 well-formed vs 0.93 in the earlier loads of crm_customers"


@pytest.mark.integration  # gate runs, > 2 s
def test_row_drop_against_previous_load_fails(warehouse: Path, reports: Path) -> None:
    add_crm_load(warehouse, "run-2", day=2, rows=30)  # 25% fewer: fine
    assert gate(warehouse, reports, ["raw"]).success

    add_crm_load(warehouse, "run-3", day=3, rows=10)  # 67% fewer than run-2
    error = expect_failure(warehouse, reports, ["raw"])
    [failure] = error.result.failures
    assert failure.suite == "raw.crm_customers.deliveries"
    assert failure.column == "row_drop_share"
    assert failure.examples == ("raw.crm_customers@f-run-3.csv (incremental) vs f-run-2.csv",)


def test_email_column_can_come_from_sources_yml(
    warehouse: Path, reports: Path, tmp_path: Path
) -> None:
    execute(
        warehouse,
        "DELETE FROM raw._source_registry WHERE field = 'email'",
        "UPDATE raw.crm_customers SET email = 'kaputt' WHERE crm_row_id < 'crm-2'",
    )
    sources = tmp_path / "sources.yml"
    sources.write_text(
        "sources:\n  crm_customers:\n    kind: offline\n    format: csv\n"
        "    record_key: crm_row_id\n    identity: {email: email}\n"
    )

    error = expect_failure(warehouse, reports, ["raw"], sources_config=sources,
                           thresholds=STRICT_FORMATS)
    assert [f.expectation_type for f in error.result.failures] == [
        "expect_column_values_to_match_regex"
    ]
    assert "raw.web_events: no email, phone, birth_date column mapped" in " ".join(
        error.result.notes
    )


def test_registered_email_column_missing_from_raw_table_fails(
    warehouse: Path, reports: Path
) -> None:
    execute(warehouse, "ALTER TABLE raw.web_events DROP COLUMN email")
    error = expect_failure(warehouse, reports, ["raw"])
    [failure] = error.result.failures
    assert failure.suite == "raw.required_objects"
    assert failure.examples == ("raw.web_events.email",)


def test_missing_raw_table_fails_and_names_it(warehouse: Path, reports: Path) -> None:
    execute(warehouse, "DROP TABLE raw.web_events")
    error = expect_failure(warehouse, reports, ["raw"])

    [failure] = error.result.failures
    assert failure.suite == "raw.required_objects"
    assert failure.examples == ("raw.web_events",)


# ---------------------------------------------------------------- identity layer


def test_cluster_over_size_limit_fails_identity(warehouse: Path, reports: Path) -> None:
    execute(
        warehouse,
        "INSERT INTO main.fct_identity_graph "
        "SELECT 'P-giant', 'web_events', 'ev-g' || i, NULL FROM range(251) t(i)",
    )
    error = expect_failure(warehouse, reports, ["identity"])

    [failure] = error.result.failures
    assert failure.suite == "identity.fct_identity_graph.clusters"
    assert failure.table == "main.fct_identity_graph"
    assert failure.expectation_type == "expect_column_max_to_be_between"
    assert failure.column == "cluster_size"
    assert failure.observed.startswith("251")
    assert failure.examples == ("P-giant",)
    assert "expect_column_max_to_be_between" in str(error)
    assert "P-giant" in str(error)


def test_cluster_limit_comes_from_thresholds(warehouse: Path, reports: Path) -> None:
    error = expect_failure(
        warehouse, reports, ["identity"], thresholds=Thresholds(max_cluster_size=1)
    )
    assert {f.column for f in error.result.failures} == {"cluster_size"}
    assert len(error.result.failures[0].examples) == 5


def test_singleton_share_outside_band_fails(warehouse: Path, reports: Path) -> None:
    # 10 of 40 profiles are singletons (0.25)
    error = expect_failure(
        warehouse, reports, ["identity"], thresholds=Thresholds(singleton_share=(0.5, 0.9))
    )
    [failure] = error.result.failures
    assert failure.expectation_type == "expect_column_mean_to_be_between"
    assert failure.observed.startswith("0.25")


def test_duplicate_source_record_and_two_customer_numbers_fail(
    warehouse: Path, reports: Path
) -> None:
    execute(
        warehouse,
        "INSERT INTO main.fct_identity_graph VALUES ('P2', 'crm_customers', 'crm-1', 'C00001')",
    )
    error = expect_failure(warehouse, reports, ["identity"])

    by_suite = {f.suite: f for f in error.result.failures}
    unique = by_suite["identity.fct_identity_graph"]
    assert unique.expectation_type == "expect_compound_columns_to_be_unique"
    assert unique.column == "source, record_id"
    assert unique.examples == ("crm_customers:crm-1",)
    numbers = by_suite["identity.fct_identity_graph.customer_numbers"]
    assert numbers.examples == ("P2",)
    assert "C00001" not in str(error)


def test_customer_number_check_is_skipped_with_a_note(tmp_path: Path, reports: Path) -> None:
    db = build_warehouse(tmp_path / "build.duckdb", customer_number=False)
    result = gate(db, reports, ["identity"])

    assert result.success
    assert "identity.fct_identity_graph.customer_numbers" not in {s.suite for s in result.suites}
    assert any("no customer_number column" in note for note in result.notes)


# ---------------------------------------------------------------- profiles layer


def test_duplicate_profile_id_fails_profiles(warehouse: Path, reports: Path) -> None:
    execute(
        warehouse,
        f"INSERT INTO main.dim_profiles VALUES ('P5', '{PLANTED_NAME}', '{PLANTED_EMAIL}')",
    )
    error = expect_failure(warehouse, reports, ["profiles"])

    [failure] = error.result.failures
    assert failure.expectation_type == "expect_column_values_to_be_unique"
    assert failure.column == "profile_id"
    assert failure.examples == ("P5",)
    assert "expect_column_values_to_be_unique" in str(error)
    assert_no_pii(str(error))
    assert_no_pii(reports_text(reports))


def test_empty_profiles_fail(warehouse: Path, reports: Path) -> None:
    execute(warehouse, "DELETE FROM main.dim_profiles")
    error = expect_failure(warehouse, reports, ["profiles"])
    assert [f.expectation_type for f in error.result.failures] == [
        "expect_table_row_count_to_be_between"
    ]


def test_row_drop_against_previous_publication(
    tmp_path: Path, warehouse: Path, reports: Path
) -> None:
    previous = build_warehouse(tmp_path / "published.duckdb")
    assert gate(warehouse, reports, ["profiles"], previous_db=previous).success

    execute(
        warehouse,
        "DELETE FROM main.dim_profiles WHERE profile_id >= 'P2'",
        "DELETE FROM main.dim_profile_consent WHERE profile_id >= 'P2'",
    )
    error = expect_failure(warehouse, reports, ["profiles"], previous_db=previous)
    [failure] = error.result.failures
    assert failure.suite == "profiles.dim_profiles.vs_previous"
    assert failure.column == "row_drop_share"
    assert failure.examples == ("main.dim_profiles",)


@pytest.mark.integration  # gate runs, > 2 s
def test_profile_id_changes_against_previous_publication(
    tmp_path: Path, warehouse: Path, reports: Path
) -> None:
    previous = build_warehouse(tmp_path / "published.duckdb")
    # 70 records; new records do not count, only records whose profile id changed.
    execute(
        warehouse,
        "INSERT INTO main.fct_identity_graph SELECT 'P-new', 'web_events', 'ev-new', NULL",
        "UPDATE main.fct_identity_graph SET profile_id = 'Q1' WHERE profile_id = 'P1'",
    )
    assert gate(warehouse, reports, ["identity"], previous_db=previous).success  # 2 of 70

    execute(
        warehouse,
        "UPDATE main.fct_identity_graph SET profile_id = 'Q' || profile_id "
        "WHERE profile_id < 'P3'",
    )
    error = expect_failure(warehouse, reports, ["identity"], previous_db=previous)
    [failure] = error.result.failures
    assert failure.suite == "identity.fct_identity_graph.vs_previous"
    assert failure.column == "profile_id_changed"
    assert failure.observed.startswith("0.6")
    assert len(failure.examples) == 5
    assert all(e.startswith(("crm_customers:crm-", "web_events:ev-")) for e in failure.examples)


def test_unknown_layer_is_rejected(warehouse: Path, reports: Path) -> None:
    with pytest.raises(ValueError, match="unknown quality layer"):
        gate(warehouse, reports, ["exports"])


def test_missing_warehouse_file_is_a_clear_error(tmp_path: Path, reports: Path) -> None:
    with pytest.raises(FileNotFoundError, match="warehouse file not found"):
        gate(tmp_path / "nope.duckdb", reports)


# -------------------------------------------------------------------- thresholds


def test_shipped_quality_yml_matches_documented_defaults() -> None:
    assert load_thresholds(REPO_ROOT / "config" / "quality.yml") == Thresholds()


def test_thresholds_yaml_overrides_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "quality.yml"
    path.write_text("max_cluster_size: 12\nsingleton_share: [0.1, 0.8]\n")
    loaded = load_thresholds(path)
    assert loaded.max_cluster_size == 12
    assert loaded.singleton_share == (0.1, 0.8)
    assert loaded.max_rejected_share == Thresholds().max_rejected_share


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("max_cluster_sise: 10\n", "max_cluster_sise: Extra inputs are not permitted"),
        ("max_rejected_share: 1.5\n",
         "max_rejected_share: Input should be less than or equal to 1"),
        ("max_rejected_share: yes\n", "max_rejected_share: Input should be a valid number"),
        ("max_rejected_share: '0.5'\n", "max_rejected_share: Input should be a valid number"),
        ("max_cluster_size: 2.5\n", "max_cluster_size: Input should be a valid integer"),
        ("max_cluster_size: 0\n", "max_cluster_size: Input should be greater than or equal to 1"),
        ("singleton_share: [0.9, 0.1]\n", "singleton_share: Value error, min is greater than max"),
        ("singleton_share: 0.5\n", "singleton_share: Input should be a valid tuple"),
        ("singleton_share: [0.1, 0.2, 0.3]\n", "singleton_share: Tuple should have at most 2"),
        (
            "email_regex: '[unclosed'\n",
            "email_regex: Value error, not a valid regular expression (unterminated character set)",
        ),
        ("email_regex: ''\n", "email_regex: String should have at least 1 character"),
        ("- just\n- a list\n", "Input should be a valid dictionary"),
        ("max_cluster_size: [1\n", "line 2, column 1: not valid YAML"),
        ("segment_size_change_action: block\n",
         "segment_size_change_action: Input should be 'warn' or 'fail'"),
        ("consent_channels: []\n", "consent_channels: Tuple should have at least 1 item"),
        ("consent_channels: [email, '']\n",
         "consent_channels[1]: String should have at least 1 character"),
        ("max_segment_size_change: -1\n",
         "max_segment_size_change: Input should be greater than or equal to 0"),
    ],
)
def test_thresholds_errors_name_file_key_and_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "quality.yml"
    path.write_text(content)
    with pytest.raises(ThresholdsError) as info:
        load_thresholds(path)
    [line] = str(info.value).splitlines()
    assert line.startswith(f"{path}: {problem}")
    # the offending value never appears (it could be personal data in other files)
    assert all(value not in line for value in ("1.5", "2.5", "block", "[unclosed"))


def test_thresholds_error_is_a_config_error_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "quality.yml"
    path.write_text("max_cluster_size: 0\nformat_mostly: 2\n")
    with pytest.raises(ConfigError) as info:
        load_thresholds(path)
    assert isinstance(info.value, ThresholdsError)
    assert info.value.problems == [
        ("format_mostly", "Input should be less than or equal to 1"),
        ("max_cluster_size", "Input should be greater than or equal to 1"),
    ]


def test_empty_thresholds_file_means_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "quality.yml"
    path.write_text("# all defaults\n")
    assert load_thresholds(path) == Thresholds()


def test_missing_thresholds_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.yml"
    with pytest.raises(ThresholdsError, match=f"^{re.escape(str(path))}: file does not exist$"):
        load_thresholds(path)


def test_gate_accepts_a_thresholds_path(warehouse: Path, reports: Path, tmp_path: Path) -> None:
    path = tmp_path / "strict.yml"
    path.write_text("max_cluster_size: 1\n")
    with pytest.raises(QualityGateFailed, match="cluster_size"):
        gate(warehouse, reports, ["identity"], thresholds=path)


def test_empty_identity_graph_fails_on_row_count_only(warehouse: Path, reports: Path) -> None:
    execute(warehouse, "DELETE FROM main.fct_identity_graph")
    error = expect_failure(warehouse, reports, ["identity"])
    assert [f.expectation_type for f in error.result.failures] == [
        "expect_table_row_count_to_be_between"
    ]
    assert any("is empty" in note for note in error.result.notes)


def test_gate_works_while_this_process_holds_the_file_read_write(
    warehouse: Path, reports: Path
) -> None:
    writer = duckdb.connect(str(warehouse))
    try:
        assert gate(warehouse, reports, ["profiles"]).success
        writer.execute("CREATE TABLE main.still_writable AS SELECT 1 AS x")
    finally:
        writer.close()


# ------------------------------------------------------- raw keys, formats and dates


@pytest.mark.integration  # gate runs, > 2 s
def test_key_repeated_in_a_file_only_as_identical_resent_row(
    warehouse: Path, reports: Path
) -> None:
    # An identical re-sent row (same file, same content) and a later file's update pass.
    execute(
        warehouse,
        "INSERT INTO raw.crm_customers SELECT * REPLACE (_row_number + 100 AS _row_number) "
        "FROM raw.crm_customers WHERE crm_row_id = 'crm-1'",
        "INSERT INTO raw.crm_customers SELECT * REPLACE ('Neu' AS nachname, "
        "'/data/landing/crm_customers/kunden_2026-12.csv' AS _source_file) "
        "FROM raw.crm_customers WHERE crm_row_id = 'crm-2'",
    )
    assert gate(warehouse, reports, ["raw"]).success

    # The same key with different content inside one file is two records under one key.
    execute(
        warehouse,
        "INSERT INTO raw.crm_customers SELECT * REPLACE ('Anders' AS nachname, "
        "_row_number + 200 AS _row_number) FROM raw.crm_customers WHERE crm_row_id = 'crm-3'",
    )
    error = expect_failure(warehouse, reports, ["raw"])
    [failure] = error.result.failures
    assert failure.suite == "raw.crm_customers"
    assert failure.column == "key_versions_in_file"
    assert failure.examples == ("crm-3",)
    assert_no_pii(str(error))


@pytest.mark.parametrize(
    ("update", "column"),
    [
        (f"telefon = '{PLANTED_NAME}'", "telefon"),
        ("geburtsdatum = '1980-04-31'", "geburtsdatum__parses"),
        ("updated_at = NULL", "updated_at"),
    ],
)
def test_bad_phones_dates_and_missing_timestamps_fail_raw(
    warehouse: Path, reports: Path, update: str, column: str
) -> None:
    execute(warehouse, f"UPDATE raw.crm_customers SET {update} WHERE crm_row_id < 'crm-2'")
    error = expect_failure(warehouse, reports, ["raw"], thresholds=STRICT_FORMATS)
    [failure] = error.result.failures
    assert (failure.suite, failure.column) == ("raw.crm_customers.formats", column)
    assert "crm-1" in failure.examples
    assert_no_pii(str(error))
    assert_no_pii(reports_text(reports))


# ----------------------------------------------------------- consent and suppression


def test_every_profile_needs_a_consent_row_per_channel(warehouse: Path, reports: Path) -> None:
    execute(
        warehouse,
        "DELETE FROM main.dim_profile_consent WHERE profile_id = 'P7' AND channel = 'sms'",
    )
    error = expect_failure(warehouse, reports, ["profiles"])
    [failure] = error.result.failures
    assert failure.suite == "profiles.dim_profile_consent"
    assert failure.column == "consent_channels"
    assert failure.examples == ("P7",)


def add_suppression_list(db: Path, *identifiers: str) -> None:
    execute(
        db,
        "CREATE TABLE IF NOT EXISTS main.dim_suppression_list("
        "identifier_hash VARCHAR, identifier_type VARCHAR, suppressed_at TIMESTAMP)",
        *(
            f"INSERT INTO main.dim_suppression_list VALUES (sha256('{identifier}'), 'email', "
            "TIMESTAMP '2026-11-01')"
            for identifier in identifiers
        ),
    )


@pytest.mark.integration  # gate runs, > 2 s
def test_suppressed_identifier_must_not_be_contactable(warehouse: Path, reports: Path) -> None:
    result = gate(warehouse, reports, ["profiles"])
    assert any("dim_suppression_list not found" in note for note in result.notes)

    add_suppression_list(warehouse, "someone.else@example.de")
    assert gate(warehouse, reports, ["profiles"]).success

    add_suppression_list(warehouse, PLANTED_EMAIL)
    error = expect_failure(warehouse, reports, ["profiles"])
    [failure] = error.result.failures
    assert failure.suite == "profiles.dim_profile_consent.suppression"
    assert failure.examples and all(e.endswith(":email") for e in failure.examples)
    assert_no_pii(str(error))
    assert_no_pii(reports_text(reports))


# ------------------------------------------------------------------------- exports


def members(count: int = 5, **columns: object) -> pd.DataFrame:
    """Export members P0..P<count-1>; the email differs in case and blanks from the consent."""
    frame = pd.DataFrame(
        {"profile_id": [f"P{i}" for i in range(count)], "email": f"  {PLANTED_EMAIL.upper()} "}
    )
    return frame.assign(**columns)


def test_export_of_opted_in_members_passes(warehouse: Path, reports: Path) -> None:
    # An identifier column with no value at all (here: phone) must not break the checks.
    result = validate_export(warehouse, members(phone=None), "email", 5, reports, Thresholds())
    assert result.success and not result.warnings
    assert [s.suite for s in result.suites] == ["exports.export.consent", "exports.export.size"]
    assert any("dim_suppression_list not found" in note for note in result.notes)


@pytest.mark.parametrize(
    ("member_columns", "channel", "example"),
    [
        ({}, "sms", "P0:sms"),  # no sms opt-in at all
        ({"email": "other.person@example.de"}, "email", "P0:email"),  # not this address
        ({"email": "kein at example"}, "email", "P0:email"),  # not an address at all
        ({"channel": "phone"}, "email", "P0:phone"),  # a per-row channel wins
    ],
)
def test_export_member_without_opt_in_fails(
    warehouse: Path, reports: Path, member_columns: dict, channel: str, example: str
) -> None:
    with pytest.raises(QualityGateFailed) as info:
        validate_export(warehouse, members(**member_columns), channel, None, reports)
    [failure] = info.value.result.failures
    assert failure.suite == "exports.export.consent"
    assert example in failure.examples
    assert_no_pii(str(info.value))


def test_export_with_suppressed_identifier_fails(warehouse: Path, reports: Path) -> None:
    add_suppression_list(warehouse, PLANTED_EMAIL)
    with pytest.raises(QualityGateFailed) as info:
        validate_export(warehouse, members(), "email", None, reports, segment="newsletter")
    # The address is still contactable in dim_profile_consent: suppression is its own check,
    # so a stale consent row cannot let a suppressed address through.
    [failure] = info.value.result.failures
    assert failure.suite == "exports.newsletter.suppression"
    assert failure.examples[0] == "P0:email"
    assert_no_pii(str(info.value))
    assert_no_pii(reports_text(reports))


def test_export_of_published_addresses_is_checked_without_renormalising(
    warehouse: Path, reports: Path
) -> None:
    # Exporters hand out dim_profile_consent's contact points as they are (the SQL-only path).
    published = members(email=PLANTED_EMAIL)
    assert validate_export(warehouse, published, "email", 5, reports).success

    add_suppression_list(warehouse, PLANTED_EMAIL)
    with pytest.raises(QualityGateFailed) as info:
        validate_export(warehouse, published, "email", 5, reports)
    [failure] = info.value.result.failures
    assert failure.suite == "exports.export.suppression"
    assert_no_pii(str(info.value))


def test_export_size_jump_fails_by_default_and_warns_when_configured(
    warehouse: Path, reports: Path
) -> None:
    with pytest.raises(QualityGateFailed, match="size_change") as info:
        validate_export(warehouse, members(), "email", 100, reports, Thresholds(),
                        segment="winback")
    assert "segment winback (previous export 100 members, now 5)" in str(info.value)

    lenient = Thresholds(segment_size_change_action="warn")
    result = validate_export(warehouse, members(), "email", 100, reports, lenient)
    assert result.success
    [warning] = result.warnings
    assert warning.column == "size_change" and warning.observed.startswith("0.95")


def test_export_members_need_profile_ids(warehouse: Path, reports: Path) -> None:
    with pytest.raises(ValueError, match="profile_id"):
        validate_export(warehouse, pd.DataFrame({"email": ["x@example.de"]}), "email", 1, reports)


@pytest.mark.integration  # a subprocess importing GX, > 2 s
def test_importing_the_gate_has_no_side_effects_until_checks_run() -> None:
    # The CLI and DAG parsing import the gate; GX (slow) and its settings wait for a run.
    script = textwrap.dedent(
        """
        import os, sys
        import quality, quality.exports, quality.gate, quality.thresholds
        assert "great_expectations" not in sys.modules
        assert "GX_ANALYTICS_ENABLED" not in os.environ
        import quality.suites
        assert os.environ["GX_ANALYTICS_ENABLED"] == "False"
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "GX_ANALYTICS_ENABLED"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env)
    assert done.returncode == 0, done.stderr


def test_validation_history_keeps_the_newest_runs(tmp_path: Path) -> None:
    """Every gate run adds a result per check; only the newest runs' results and pages stay."""
    from quality.gate import prune_history

    def result(root: str, suite: str, run: str, at: str) -> Path:
        folder = tmp_path / root / "validations" / suite.replace(".", "/") / run / at
        folder.mkdir(parents=True)
        (folder / "batch.json").write_text("{}")
        return folder.parent

    runs = {"manual__a": "20261101T060000.000001Z", "scheduled__b": "20261102T060000.000001Z",
            "manual__c": "20261103T060000.000001Z"}
    made = {run: [result(root, suite, run, at)
                  for root in ("gx", "data_docs")
                  for suite in ("raw.crm_customers", "identity.fct_identity_graph.clusters")]
            for run, at in runs.items()}
    assert prune_history(tmp_path, keep=2) == 1
    assert not any(folder.exists() for folder in made["manual__a"])
    assert all(folder.exists() for run in ("scheduled__b", "manual__c") for folder in made[run])
    assert prune_history(tmp_path, keep=2) == 0
