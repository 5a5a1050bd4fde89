"""The DAGs retry a failed task (``cdp/orchestration.py``), which is safe only because every
task is idempotent: running a finished run's tasks again, with the same run id and clock,
changes nothing a user sees. Verdicts (a failed gate, invalid configuration, an unreadable
landing file) are not retried."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import duckdb
import pytest
from digests import output_digests

import cdp.pipeline as pipeline
from cdp.context import RunContext
from cdp.run import load_dag
from core.paths import DataPaths
from ingest.errors import IngestRunError
from ingest.loader import load_all
from ingest.registry import load_registry

SOURCES = """\
sources:
  orders:
    kind: offline
    format: csv
    path: "*.csv*"
    record_key: order_id
    timestamp: order_ts
    identity: {email: email}
"""


def _raw_counts(paths: DataPaths) -> dict[str, int]:
    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw' "
                             "ORDER BY 1").fetchall()
        return {name: con.execute(f'SELECT count(*) FROM raw."{name}"').fetchall()[0][0]
                for (name,) in tables}


def test_running_every_task_of_a_finished_run_again_changes_nothing(
        demo_run, demo_home_copy: DataPaths) -> None:
    _, summary = demo_run
    paths = demo_home_copy
    before_raw, before = _raw_counts(paths), output_digests(paths)
    assert before_raw and sum(before_raw.values()) > 0
    assert any(key.startswith("export ") for key in before), "the run exported nothing"

    # What a retry of each task does: the same stage, same run id, same clock.
    ctx = RunContext.at_edge(paths.home, None, summary.run_id, _as_of(summary))
    for source in pipeline.registered_sources(ctx):
        report = pipeline.ingest_source(ctx, source)
        assert report["rows_loaded"] == 0, f"{source}: a retried ingest loaded rows again"
    pipeline.train_identity(ctx)
    pipeline.build(ctx)
    pipeline.quality_gate(ctx)
    pipeline.publish(ctx)
    pipeline.export(ctx)

    assert _raw_counts(paths) == before_raw
    after = output_digests(paths)
    changed = sorted(key for key in before.keys() | after.keys()
                     if before.get(key) != after.get(key))
    assert not changed, f"a retried run changed: {changed}"


def _as_of(summary: Any) -> Any:
    from cdp.context import parse_as_of

    assert summary.as_of, "the run recorded no clock"
    return parse_as_of(summary.as_of)


@pytest.mark.parametrize("dag_id", ["cdp_pipeline", "cdp_export", "cdp_identity_training"])
def test_tasks_retry_but_verdicts_do_not(dag_id: str) -> None:
    dag = load_dag(dag_id)
    retries = {task.task_id: task.retries for task in dag.tasks}
    verdicts = {"registered_sources", "quality_gate"}
    assert all(retries[t] == 0 for t in verdicts & retries.keys())
    assert all(n >= 1 for t, n in retries.items() if t not in verdicts), retries


def test_a_verdict_fails_its_task_at_once_and_a_passing_error_is_retried() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from cdp.context import InvalidConfiguration
    from cdp.dbt import DbtBuildFailed, DbtCrashed
    from cdp.orchestration import verdict_of

    problem = "config/sources.yml: sources.crm.record_key: Field required"
    verdict = verdict_of(InvalidConfiguration([problem]))
    assert isinstance(verdict, AirflowFailException) and problem in str(verdict)
    assert isinstance(verdict_of(DbtBuildFailed("dbt build failed: dim_profiles: fail")),
                      AirflowFailException)
    assert verdict_of(DbtCrashed("dbt build crashed: worker killed")) is None
    assert verdict_of(RuntimeError("lock busy")) is None


def _ingest_failure(tmp_path: Path, file_name: str, data: bytes) -> IngestRunError:
    """What the ingest task's load raises for a landing folder holding one file of ``data``."""
    config = tmp_path / "sources.yml"
    config.write_text(SOURCES)
    landing = tmp_path / "landing" / "orders"
    landing.mkdir(parents=True)
    (landing / file_name).write_bytes(data)
    with pytest.raises(IngestRunError) as failed:
        load_all(tmp_path / "build.duckdb", load_registry(config), tmp_path / "landing", "r1",
                 ["orders"])
    return failed.value


@pytest.mark.parametrize(("file_name", "data"), [
    ("garbage.csv", b"\x00\x01\x02not a csv at all\xff\xfe" * 10),
    ("no_email.csv", b"order_id,order_ts\n1,2026-01-01 10:00:00\n"),
])
def test_an_unreadable_landing_file_fails_its_task_at_once(
        tmp_path: Path, file_name: str, data: bytes) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from cdp.orchestration import verdict_of

    verdict = verdict_of(_ingest_failure(tmp_path, file_name, data))
    assert isinstance(verdict, AirflowFailException) and file_name in str(verdict)


def test_a_landing_file_still_being_written_is_retried(tmp_path: Path) -> None:
    from cdp.orchestration import verdict_of

    # a gzip writer that has flushed its first block only: the stream ends early
    written = gzip.compress(b"order_id,email,order_ts\n" + b"1,a@example.com,2026-01-01\n" * 999)
    assert verdict_of(_ingest_failure(tmp_path, "day.csv.gz", written[:30])) is None


def test_a_garbled_file_that_changes_while_ingest_reads_it_is_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.loader
    from cdp.orchestration import verdict_of

    inspect = ingest.loader.inspect_columns

    def inspect_while_written(con: Any, spec: Any, fp: Any) -> Any:
        with fp.path.open("ab") as delivery:
            delivery.write(b"more bytes\n")
        return inspect(con, spec, fp)

    monkeypatch.setattr(ingest.loader, "inspect_columns", inspect_while_written)
    assert verdict_of(_ingest_failure(tmp_path, "day.csv", b"\xff\xfe not yet")) is None
