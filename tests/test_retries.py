"""The DAGs retry a failed task (``cdp/orchestration.py``), which is safe only because every
task is idempotent: running a finished run's tasks again, with the same run id and clock,
changes nothing a user sees. Verdicts (a failed gate, invalid configuration) are not retried."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
from digests import output_digests

import cdp.pipeline as pipeline
from cdp.context import RunContext
from cdp.run import load_dag
from core.paths import DataPaths


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
