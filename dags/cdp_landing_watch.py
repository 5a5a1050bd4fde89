"""cdp_landing_watch (off by default: paused until you unpause it): every 10 minutes, wait up
to 9 minutes for landing files that arrived since the last look and start cdp_pipeline on
them. The sensor reschedules itself between looks (no worker slot held) and ends skipped when
nothing arrived; the files it saw are recorded only after the pipeline run was triggered, so
a failed trigger is tried again on the next look.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import PokeReturnValue, dag, task

from cdp.orchestration import dag_defaults, task_context

SEEN_FILE = "landing_seen.json"


@dag(
    dag_id="cdp_landing_watch",
    schedule="*/10 * * * *",
    is_paused_upon_creation=True,
    **dag_defaults(__doc__),
)
def cdp_landing_watch() -> None:
    @task.sensor(poke_interval=60, timeout=540, mode="reschedule", soft_fail=True)
    def new_landing_files() -> PokeReturnValue:
        from ingest.arrivals import arrived, landing_snapshot, read_seen

        ctx = task_context()
        now = landing_snapshot(ctx.paths.landing, ctx.registry)
        new = arrived(now, read_seen(ctx.paths.home / "airflow" / SEEN_FILE))
        return PokeReturnValue(is_done=bool(new), xcom_value={
            "files": len(new), "snapshot": now, "cdp_home": str(ctx.paths.home),
            "cdp_config": str(ctx.config.folder)})

    @task
    def remember(found: dict[str, Any]) -> int:
        from pathlib import Path

        from ingest.arrivals import write_seen

        write_seen(Path(found["cdp_home"]) / "airflow" / SEEN_FILE, found["snapshot"])
        return int(found["files"])

    found = new_landing_files()
    start = TriggerDagRunOperator(
        task_id="start_pipeline",
        trigger_dag_id="cdp_pipeline",
        conf={"cdp_home": "{{ ti.xcom_pull(task_ids='new_landing_files')['cdp_home'] }}",
              "cdp_config": "{{ ti.xcom_pull(task_ids='new_landing_files')['cdp_config'] }}"},
    )
    found >> start >> remember(found)


cdp_landing_watch_dag = cdp_landing_watch()
