"""A replayed delivery must not bring an erased person back.

What stays of a forgotten person is ``raw._erased_identifiers`` (SHA-256 of each normalised
identifier). A later file holding the person, however the source spells them, is loaded
without them: their row goes to ``raw.<source>__rejected`` with reason ``erased`` and none of
its values, and the quality gate does not count it against the delivery.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from ingest.ledger import ERASED_IDENTIFIERS, ERASED_REASON, ensure_raw_schema
from ingest.loader import load_all
from ingest.registry import load_registry
from privacy.identifiers import identifier_hash, normalise

REGISTRY = """\
sources:
  crm:
    kind: offline
    format: csv
    path: "*.csv"
    record_key: customer_id
    timestamp: updated_at
    identity: {email: email, phone: phone, customer_number: kundennr, first_name: vorname}
  shop:
    kind: online
    format: csv
    path: "*.csv"
    record_key: order_id
    identity: {phone: phone, country: land}
"""

HEADER = "customer_id,email,phone,kundennr,vorname,updated_at\n"
#: The person who is forgotten, as the erasure request named them ...
ERASED = {"email": "Anna.Schmidt@Example.org", "phone": "+49 171 2345678",
          "customer_number": "K-1001"}
#: ... and as an old CRM export spells them.
ANNA = "c1,ANNA.SCHMIDT@EXAMPLE.ORG,0171 2345678,k 1001,Anna,2024-01-05 10:00:00\n"
BERND = "c2,bernd.meier@example.org,0151 9876543,K-1002,Bernd,2024-01-06 10:00:00\n"
CLARA = "c3,clara.wolf@example.org,+49 160 1112223,K-1003,Clara,2024-01-07 10:00:00\n"
OTHERS = BERND + CLARA
#: What of Anna must not be found in any table afterwards, as written and as normalised
#: (lower-cased, as searched; long enough not to occur in a hash by chance).
NEEDLES = ("anna.schmidt", ": anna", "0171 2345678", "1712345678", "k 1001", "k1001")


@pytest.fixture()
def env(tmp_path: Path) -> dict:
    registry_path = tmp_path / "config" / "sources.yml"
    registry_path.parent.mkdir()
    registry_path.write_text(REGISTRY)
    landing = tmp_path / "landing"
    for name in ("crm", "shop"):
        (landing / name).mkdir(parents=True)
    return {"registry": load_registry(registry_path), "landing": landing,
            "db": tmp_path / "warehouse" / "build.duckdb"}


def run(env: dict, run_id: str = "run", sources: list[str] | None = None):  # type: ignore[no-untyped-def]
    [report] = load_all(env["db"], env["registry"], env["landing"], run_id,
                        sources or ["crm"])
    return report


def erase(db: Path, identifiers: dict[str, str], region: str = "DE") -> None:
    """What the erasure keeps: the hash of each normalised identifier."""
    db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db))
    try:
        ensure_raw_schema(con)
        for kind, raw in identifiers.items():
            value = normalise(kind, raw, region)
            assert value is not None
            con.execute(f"INSERT INTO raw.{ERASED_IDENTIFIERS} VALUES (?, ?, 'req-1', ?)",
                        [identifier_hash(kind, value), kind, datetime(2024, 6, 1)])
    finally:
        con.close()


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def tables_holding(db: Path, needles: tuple[str, ...]) -> list[str]:
    """Every table (any schema) one of whose rows contains a needle, after a CHECKPOINT.

    Only SQL: DuckDB may keep freed blocks in the file, so the file's bytes prove nothing."""
    con = duckdb.connect(str(db))
    try:
        con.execute("CHECKPOINT")
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database()").fetchall()
        found = []
        for schema, table in tables:
            for needle in needles:
                row = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" AS t '
                    "WHERE contains(lower(CAST(t AS VARCHAR)), ?)", [needle]).fetchone()
                if row and row[0]:
                    found.append(f"{schema}.{table}: {needle}")
        return found
    finally:
        con.close()


@pytest.mark.parametrize("kinds", [("email",), ("phone",), ("customer_number",),
                                   ("email", "phone", "customer_number")])
def test_replayed_row_of_an_erased_person_is_quarantined_without_values(
    env: dict, kinds: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    erase(env["db"], {kind: ERASED[kind] for kind in kinds})
    (env["landing"] / "crm" / "export_2024-01.csv").write_text(HEADER + BERND + ANNA + CLARA)
    caplog.set_level(logging.DEBUG)

    report = run(env)

    [item] = report.files
    assert (item.rows_in_file, item.rows_loaded, item.rows_rejected, item.rows_erased) == (
        3, 2, 1, 1)
    assert (report.rows_loaded, report.rows_rejected, report.rows_erased) == (2, 1, 1)
    db = env["db"]
    assert query(db, "SELECT customer_id FROM raw.crm ORDER BY 1") == [("c2",), ("c3",)]
    assert query(db, "SELECT _source_file, _line_number, _reason, _raw_line, customer_id, "
                     "_run_id, _file_sha256 = ?, _loaded_at IS NOT NULL FROM raw.crm__rejected",
                 [item.file_sha256]) == [
        ("export_2024-01.csv", 3, ERASED_REASON, None, None, "run", True, True)]
    assert query(db, "SELECT rows_in_file, rows_loaded, rows_rejected, rows_duplicate "
                     "FROM raw._load_ledger") == [(3, 2, 1, 0)]
    assert tables_holding(db, NEEDLES) == []
    assert not any(n in caplog.text.lower() for n in NEEDLES)
    assert "1 erased" in caplog.text


@pytest.mark.parametrize("reader", ["staged", "streaming"])
def test_replay_after_the_erasure_sets_aside_the_others_and_quarantines_the_person(
    env: dict, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day's export was loaded, the person forgotten, then the export is replayed (other
    bytes): the others are known versions (raw._redelivered), the person is quarantined and
    not a redelivered version either."""
    if reader == "streaming":  # small files are staged, big ones stream from read_csv
        monkeypatch.setattr("ingest.readers.csv.PARALLEL_STAGE_MAX_BYTES", 0)
    crm = env["landing"] / "crm"
    (crm / "day1.csv").write_text(HEADER + ANNA + OTHERS)
    assert run(env, "run-1").rows_loaded == 3
    as_written = ("anna.schmidt", ": anna", "0171 2345678", "k 1001")  # the search works
    assert tables_holding(env["db"], NEEDLES) == [f"raw.crm: {n}" for n in as_written]
    con = duckdb.connect(str(env["db"]))  # what forgetting did to raw (privacy.forget)
    con.execute("DELETE FROM raw.crm WHERE customer_id = 'c1'")
    con.close()
    erase(env["db"], {"email": ERASED["email"]})
    (crm / "day1_replay.csv").write_text((HEADER + ANNA + OTHERS).replace("\n", "\r\n"))

    report = run(env, "run-2")

    [_, item] = report.files
    assert (item.status, item.rows_in_file, item.rows_loaded, item.rows_rejected,
            item.rows_erased, item.rows_duplicate) == ("loaded", 3, 0, 1, 1, 2)
    db = env["db"]
    assert query(db, "SELECT record_key FROM raw._redelivered ORDER BY 1") == [("c2",), ("c3",)]
    assert query(db, "SELECT customer_id FROM raw.crm ORDER BY 1") == [("c2",), ("c3",)]
    assert query(db, "SELECT _source_file, _reason, _raw_line, customer_id "
                     "FROM raw.crm__rejected") == [("day1_replay.csv", ERASED_REASON, None, None)]
    assert query(db, "SELECT file_name, rows_in_file, rows_loaded, rows_rejected, rows_duplicate, "
                     "rows_known_key FROM raw._load_ledger ORDER BY loaded_at") == [
        ("day1.csv", 3, 3, 0, 0, 0), ("day1_replay.csv", 3, 0, 1, 2, 2)]
    assert tables_holding(db, NEEDLES) == []


def test_phone_is_read_in_the_rows_own_country(env: dict) -> None:
    """A source mapping ``country``: a national number is read in that country (as the
    identity resolver reads it), so an Austrian erasure matches and a German one does not."""
    erase(env["db"], {"phone": "+43 664 1234567"})
    (env["landing"] / "shop" / "orders.csv").write_text(
        "order_id,phone,land\n"
        "o1,0664 1234567,Österreich\n"  # +43 664 1234567: erased
        "o2,0664 1234567,\n"  # read in the default region DE: another number
        "o3,0664/1234567,AT\n")  # erased, other spelling

    report = run(env, sources=["shop"])

    assert (report.rows_loaded, report.rows_rejected, report.rows_erased) == (1, 2, 2)
    assert query(env["db"], "SELECT order_id FROM raw.shop") == [("o2",)]
    assert query(env["db"], "SELECT _line_number, _reason, order_id FROM raw.shop__rejected "
                            "ORDER BY 1") == [(2, ERASED_REASON, None), (4, ERASED_REASON, None)]


def test_erased_rows_are_not_a_quality_failure_of_the_delivery(env: dict) -> None:
    from quality.suites.catalog import read_catalog
    from quality.suites.raw import _load_check
    from quality.thresholds import Thresholds

    erase(env["db"], {"email": ERASED["email"]})
    (env["landing"] / "crm" / "export.csv").write_text(HEADER + ANNA + OTHERS)
    assert run(env).rows_erased == 1  # 1 of 3 quarantined: far over max_rejected_share

    con = duckdb.connect(str(env["db"]), read_only=True)
    try:
        check = _load_check(con, read_catalog(con), "crm", "customer_id", Thresholds(), [])
    finally:
        con.close()
    assert check.frame.iloc[0].to_dict() == {"loaded_rows": 2, "rejected_rows": 0,
                                             "rejected_share": 0.0}


def test_without_erased_identifiers_nothing_changes(
    env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object) -> None:
        raise AssertionError("identity columns read although nothing is erased")

    monkeypatch.setattr("ingest.loader._erased_keys", never)
    (env["landing"] / "crm" / "export.csv").write_text(HEADER + ANNA + OTHERS)

    report = run(env)

    [item] = report.files
    assert (item.rows_loaded, item.rows_rejected, item.rows_erased) == (3, 0, 0)
    assert query(env["db"], "SELECT count(*) FROM raw.crm__rejected") == [(0,)]
    assert query(env["db"], "SELECT rows_in_file, rows_loaded, rows_rejected "
                            "FROM raw._load_ledger") == [(3, 3, 0)]


def test_an_erased_identifier_of_another_kind_does_not_match(env: dict) -> None:
    """A customer number's hash is ``customer_number:<value>``: a loyalty card or phone
    spelled the same is someone else's identifier."""
    erase(env["db"], {"loyalty_card": "K-1001"})
    (env["landing"] / "crm" / "export.csv").write_text(HEADER + ANNA + OTHERS)

    report = run(env)

    assert (report.rows_loaded, report.rows_rejected, report.rows_erased) == (3, 0, 0)


@pytest.mark.parametrize("kind", ["email", "phone", "customer_number"])
def test_a_broken_line_of_an_erased_person_keeps_none_of_their_values(
        env: dict, kind: str) -> None:
    """Their line fails for another reason (a date nobody can read): it is quarantined anyway,
    but as ``erased``, without its line and key; other broken lines keep theirs."""
    erase(env["db"], {kind: ERASED[kind]})
    broken_anna = ANNA.replace("2024-01-05 10:00:00", "im Januar")
    broken_bernd = BERND.replace("2024-01-06 10:00:00", "im Januar")
    (env["landing"] / "crm" / "export_2024-02.csv").write_text(
        HEADER + broken_bernd + broken_anna + CLARA)

    report = run(env)

    assert (report.rows_loaded, report.rows_rejected) == (1, 2)
    rows = query(env["db"], "SELECT _reason, _raw_line IS NULL, customer_id FROM "
                            "raw.crm__rejected ORDER BY _line_number")
    assert rows[1] == (ERASED_REASON, True, None)
    assert rows[0][0] != ERASED_REASON and rows[0][1:] == (False, "c2")
    assert tables_holding(env["db"], NEEDLES) == []
