"""cdp_export: every segment of segments.yml through the suppression chain into its export
files, whenever cdp_pipeline publishes (scheduled on the asset ``cdp_published_warehouse``), or
by hand. A triggered run exports as of the publishing run's clock into
``exports/<segment>/<publishing run id>/``; a manual run uses its params and its own run id.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, task

from cdp.orchestration import PUBLISHED_WAREHOUSE, dag_defaults, run_stage


@dag(
    dag_id="cdp_export",
    schedule=[PUBLISHED_WAREHOUSE],
    # Active from the start: it runs only when cdp_pipeline publishes.
    is_paused_upon_creation=False,
    **dag_defaults(__doc__, params={
        "publication_run_id": Param(
            None, type=["null", "string"], title="Publishing run",
            description="File the export under this cdp_pipeline run's id (default: the "
            "triggering publication's run; a manual run: its own id)."),
    }),
)
def cdp_export() -> None:
    @task
    def export() -> dict[str, Any]:
        return run_stage("export")

    @task
    def report(exported: dict[str, Any]) -> dict[str, Any]:
        """The controlling report of the publication again, now with its exports
        (reports/kpi/)."""
        return run_stage("report")

    report(export())


cdp_export_dag = cdp_export()
