"""End-to-end: the real DAG (dag.test) with real ingest, dbt, Splink, GX and publication."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from cdp.run import run_pipeline
from core.paths import DataPaths
from profiles.activation.hot_events import EVENTS_SOURCE


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_run_publishes_profiles_with_high_f1(demo_run) -> None:
    paths, summary = demo_run
    assert summary.succeeded, summary.failed_tasks
    assert set(summary.records_per_source) >= {
        "web_events", "shop_accounts", "email_events", "crm_customers", "pos_orders",
        "support_tickets", "consent_log",
    }
    assert all(count > 0 for source, count in summary.records_per_source.items()
               if source != EVENTS_SOURCE)  # nobody posted to the API
    assert summary.identity is not None
    assert summary.identity["f1"] >= 0.95
    assert summary.identity["precision"] >= 0.97
    # Far fewer profiles than source records, but not absurdly few: about one per person.
    with open(paths.truth / "demo_truth.csv", newline="") as handle:
        truth_people = {row["person_id"] for row in csv.DictReader(handle)}
    assert summary.profiles is not None
    assert 0.8 * len(truth_people) <= summary.profiles <= 1.3 * len(truth_people)


def test_published_file_holds_the_marts_read_only(demo_run) -> None:
    paths, summary = demo_run
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        tables = {
            f"{s}.{t}" for s, t in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        }
        marts = {"main.dim_profiles", "main.fct_identity_graph", "main.dim_profile_consent"}
        assert marts <= tables
        assert not any(t.startswith(("raw.", "staging.", "intermediate.")) for t in tables)
        graph_rows, distinct_records = con.execute(
            "SELECT count(*), count(DISTINCT (source, record_id)) FROM main.fct_identity_graph"
        ).fetchone()
        assert graph_rows == distinct_records > 0
        orphans = con.execute(
            "SELECT count(*) FROM main.fct_identity_graph g "
            "ANTI JOIN main.dim_profiles p USING (profile_id)").fetchone()[0]
        assert orphans == 0
        with pytest.raises(duckdb.Error):
            con.execute("CREATE TABLE main.x AS SELECT 1")


def test_export_contains_only_email_opted_in_profiles(demo_run) -> None:
    paths, summary = demo_run
    assert summary.exports, "the example segment was not exported"
    export = next(e for e in summary.exports if e["segment"] == "email_newsletter")
    members = Path(export["path"])
    manifest = json.loads((members.parent / "manifest.json").read_text())
    assert manifest["rows"] == export["rows"] > 0
    assert manifest["sha256"] == _sha256(members)
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        not_contactable = con.execute(
            "SELECT count(*) FROM read_csv(?) m WHERE NOT EXISTS ("
            " SELECT 1 FROM main.dim_profile_consent c"
            " JOIN main.dim_profile_contact_values v USING (profile_id, contact_point)"
            " WHERE c.profile_id = m.profile_id AND c.channel = 'email'"
            " AND v.deliverable_value = m.email AND c.is_contactable)",
            [str(members)],
        ).fetchone()[0]
    assert not_contactable == 0


def test_failed_quality_gate_leaves_publication_byte_identical(
    demo_home_copy: DataPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = demo_home_copy
    before = _sha256(paths.published_db)
    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parent.parent / "config", config)
    quality = config / "quality.yml"
    quality.write_text(quality.read_text().replace("max_cluster_size: ", "max_cluster_size: 1 #"))
    monkeypatch.setenv("CDP_CONFIG", str(config))

    summary = run_pipeline(paths)

    assert not summary.succeeded
    assert summary.failed_tasks.get("quality_gate") == "failed"
    assert summary.failed_tasks.get("publish") == "upstream_failed"
    assert _sha256(paths.published_db) == before
    assert summary.quality is not None and summary.quality["passed"] is False


def test_unreadable_landing_file_fails_the_run_and_publishes_nothing(
    demo_home_copy: DataPaths,
) -> None:
    paths = demo_home_copy
    before = _sha256(paths.published_db)
    broken = paths.landing / "pos_orders" / "orders_broken.csv"
    broken.write_bytes(b"\x00\x01\x02not a csv at all\xff\xfe" * 10)

    summary = run_pipeline(paths)

    assert not summary.succeeded
    failed = [task for task in summary.failed_tasks if task.startswith("ingest")]
    assert failed, summary.failed_tasks
    assert _sha256(paths.published_db) == before
    report = json.loads(
        (paths.run_reports(summary.run_id) / "ingest__pos_orders.json").read_text()
    )
    assert "orders_broken.csv" in report["error"]
    assert any("orders_broken.csv" in error for error in summary.errors.values())
