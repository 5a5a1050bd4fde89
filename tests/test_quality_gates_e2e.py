"""Quality gates and write-audit-publish through the real Airflow DAG (dag.test).

* Readers in other processes keep published.duckdb open, or open it afresh per query,
  during a full pipeline run: they are never blocked, and the run still publishes.
* One failing expectation per layer fails the quality_gate task and the DAG run, blocks
  publication and leaves published.duckdb byte-identical. These runs reuse a real build
  from the demo run and stub ingest and dbt (the gate needs seconds, dbt a minute): the
  DAG, the gate task and the publish dependency are the real ones.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

import cdp.pipeline as pipeline
from cdp.commands.run import print_summary
from cdp.context import RunContext
from cdp.run import RunSummary, run_pipeline
from cdp.settings import DataPaths

# A reader process: "hold" keeps one read-only connection for the whole run (an analyst's
# session), "reopen" connects afresh per query (an export or API request). Two processes,
# because DuckDB shares one database instance per file within a process: a fresh connection
# next to a held one would keep reading the publication the held one opened.
_READER = """
import json, sys, time
from pathlib import Path
import duckdb

mode = sys.argv[1]
published, ready, stop, out = map(Path, sys.argv[2:6])
held = duckdb.connect(str(published), read_only=True) if mode == "hold" else None
stats = {"iterations": 0, "slowest": 0.0, "errors": [], "run_ids": []}
ready.write_text("ready")
while not stop.exists():
    started = time.perf_counter()
    try:
        con = held or duckdb.connect(str(published), read_only=True)
        run_id = con.execute("SELECT run_id FROM main._publication").fetchone()[0]
        con.execute("SELECT count(*) FROM main.dim_profile_consent").fetchone()
        if con is not held:
            con.close()
        if run_id not in stats["run_ids"]:
            stats["run_ids"].append(run_id)
    except Exception as exc:
        stats["errors"].append(type(exc).__name__ + ": " + str(exc)[:200])
    stats["iterations"] += 1
    stats["slowest"] = max(stats["slowest"], time.perf_counter() - started)
    time.sleep(0.02)
out.write_text(json.dumps(stats))
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _published_run_id(paths: DataPaths) -> str:
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        return con.execute("SELECT run_id FROM main._publication").fetchone()[0]


def test_readers_of_published_are_never_blocked_by_a_run(
    demo_home_copy: DataPaths, tmp_path: Path
) -> None:
    paths = demo_home_copy
    before = _published_run_id(paths)
    stop = tmp_path / "stop"
    readers = {}
    for mode in ("hold", "reopen"):
        ready, out = tmp_path / f"{mode}.ready", tmp_path / f"{mode}.json"
        process = subprocess.Popen(
            [sys.executable, "-c", _READER, mode, str(paths.published_db), str(ready),
             str(stop), str(out)]
        )
        readers[mode] = (process, ready, out)
    try:
        deadline = time.monotonic() + 30
        for process, ready, _ in readers.values():
            while not ready.exists():
                assert process.poll() is None and time.monotonic() < deadline, "no reader"
                time.sleep(0.05)

        summary = run_pipeline(paths)

        assert all(p.poll() is None for p, _, _ in readers.values()), "a reader died"
    finally:
        stop.write_text("stop")
        for process, _, _ in readers.values():
            process.wait(timeout=30)
    stats = {mode: json.loads(out.read_text()) for mode, (_, _, out) in readers.items()}

    assert summary.succeeded, summary.failed_tasks
    assert _published_run_id(paths) == summary.run_id != before
    for mode, seen in stats.items():
        assert seen["errors"] == [], mode
        assert seen["iterations"] > 20, mode
        assert seen["slowest"] < 2.0, f"{mode}: a read took {seen['slowest']:.1f}s (blocked)"
    # The held connection keeps a consistent view of the publication it opened ...
    assert stats["hold"]["run_ids"] == [before]
    # ... while fresh connections moved on to the new publication after the swap.
    assert stats["reopen"]["run_ids"] == [before, summary.run_id]


def _conflicting_raw_row(con: duckdb.DuckDBPyConnection) -> str:
    """raw: a record key repeated in its file with different content (a row loaded after the
    last publication: rows that publication's gate passed are not checked again)."""
    con.execute(
        "INSERT INTO raw.crm_customers SELECT * REPLACE ('Changed' AS nachname, "
        "_row_number + 100000 AS _row_number, timezone('UTC', now()) AS _loaded_at) "
        "FROM raw.crm_customers ORDER BY crm_row_id LIMIT 1"
    )
    return "key_versions_in_file"


def _two_customer_numbers(con: duckdb.DuckDBPyConnection) -> str:
    """identity: a second CRM customer number in a profile that already has one (only the
    authoritative source's numbers count: a CRM record of a profile with two of them)."""
    con.execute(
        """
        UPDATE main.fct_identity_graph SET customer_number = 'TEST-SECOND-NUMBER'
        WHERE source || ':' || record_id = (
            SELECT min(source || ':' || record_id) FROM main.fct_identity_graph
            WHERE source = 'crm_customers' AND profile_id = (
                SELECT min(profile_id) FROM (
                    SELECT profile_id FROM main.fct_identity_graph
                    WHERE source = 'crm_customers' GROUP BY 1 HAVING count(*) > 1)))
        """
    )
    return "customer_numbers"


def _missing_consent_row(con: duckdb.DuckDBPyConnection) -> str:
    """profiles: one profile without its sms consent row."""
    con.execute(
        "DELETE FROM main.dim_profile_consent WHERE channel = 'sms' AND profile_id = "
        "(SELECT min(profile_id) FROM main.dim_profiles)"
    )
    return "consent_channels"


def _stub_ingest_and_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the DAG's ingest and build tasks but let them leave the build file as it is."""

    def ingest_source(ctx: RunContext, source: str) -> dict[str, Any]:
        report = {"source": source, "seconds": 0.0, "rows_loaded": 0, "rows_rejected": 0}
        return pipeline.write_stage_report(ctx, f"ingest__{source}", report)

    def build(ctx: RunContext, full_refresh: bool = False) -> dict[str, Any]:
        return pipeline.write_stage_report(ctx, "build", {"seconds": 0.0})

    monkeypatch.setattr(pipeline, "ingest_source", ingest_source)
    monkeypatch.setattr(pipeline, "build", build)


@pytest.mark.parametrize(
    ("layer", "defect"),
    [
        ("raw", _conflicting_raw_row),
        ("identity", _two_customer_numbers),
        ("profiles", _missing_consent_row),
    ],
)
def test_one_failing_expectation_per_layer_fails_the_task_and_blocks_publication(
    demo_home_copy: DataPaths,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    layer: str,
    defect: Any,
) -> None:
    paths = demo_home_copy
    with duckdb.connect(str(paths.build_db)) as con:
        column = defect(con)
    before = _sha256(paths.published_db)
    _stub_ingest_and_build(monkeypatch)

    summary = run_pipeline(paths)

    assert summary.state == "failed"  # the DAG run, not a success with a warning
    assert summary.failed_tasks.get("quality_gate") == "failed"
    assert summary.failed_tasks.get("publish") == "upstream_failed"
    assert _sha256(paths.published_db) == before
    assert summary.quality is not None and summary.quality["passed"] is False
    [failure] = summary.quality["failures"]
    assert (failure["layer"], failure["column"]) == (layer, column)
    assert failure["observed"] and failure["examples"]
    assert all(suite["failed"] == 0 for suite in summary.quality["suites"]
               if suite["suite"] != failure["suite"])

    print_summary(summary)
    printed = capsys.readouterr().out
    assert f"[{layer}] {failure['suite']}" in printed
    assert failure["examples"][0] in printed
    assert "Changed" not in printed  # never row contents


def test_run_summary_lists_every_suite_and_data_docs(demo_run, capsys) -> None:
    paths, summary = demo_run
    assert isinstance(summary, RunSummary) and summary.quality is not None
    assert summary.quality["passed"] is True
    layers = {suite["layer"] for suite in summary.quality["suites"]}
    assert layers == {"raw", "identity", "profiles"}
    assert (paths.reports / "data_docs" / "index.html").exists()
    print_summary(summary)
    printed = capsys.readouterr().out
    for suite in summary.quality["suites"]:
        assert suite["suite"] in printed
