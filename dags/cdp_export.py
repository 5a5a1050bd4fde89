"""cdp_export: every segment of segments.yml through the suppression chain into its export
files, whenever cdp_pipeline publishes (scheduled on the asset ``cdp_published_warehouse``), or
by hand. A triggered run exports as of the publishing run's clock into
``exports/<segment>/<publishing run id>/``; a manual run uses its params and its own run id.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from cdp.orchestration import DEFAULT_ARGS, PUBLISHED_WAREHOUSE, context_params, run_stage


@dag(
    dag_id="cdp_export",
    schedule=[PUBLISHED_WAREHOUSE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # Active from the start: it runs only when cdp_pipeline publishes.
    is_paused_upon_creation=False,
    default_args=DEFAULT_ARGS,
    tags=["cdp"],
    doc_md=__doc__,
    params={
        **context_params(),
        "publication_run_id": Param(
            None, type=["null", "string"], title="Publishing run",
            description="File the export under this cdp_pipeline run's id (default: the "
            "triggering publication's run; a manual run: its own id)."),
    },
)
def cdp_export() -> None:
    @task
    def export() -> dict[str, Any]:
        return run_stage("export")

    export()


cdp_export_dag = cdp_export()
