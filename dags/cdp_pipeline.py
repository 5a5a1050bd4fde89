"""cdp_pipeline: ingest every registered source → train identity (dbt up to the normalised
identity records, then the Splink model if needed) → dbt build (linkage inside) → quality gate →
publish (write-audit-publish) → report (the controlling report of the publication, under
reports/kpi/), daily unless ``$CDP_PIPELINE_SCHEDULE`` says otherwise (a cron expression, a
preset, or ``none``). A publication is the asset ``cdp_published_warehouse``; the
export DAG (dags/cdp_export.py) runs on it.

Thin TaskFlow wrappers around ``cdp.pipeline`` (shared wiring: ``cdp/orchestration.py``);
nothing heavy happens at parse time. Each task resolves its run context once: the data
directory from the ``cdp_home`` param, else ``CDP_HOME``, else ``./data``; the configuration
folder from ``cdp_config``, else ``CDP_CONFIG``, else the repository's ``config/``; the run's
clock (traits, suppression windows, future-dated records) from the ``as_of`` param, else the
run's data interval end, else its logical date, else when the run was queued: the same for
every task of a run, never the wall clock of a task and never the newest timestamp in the data.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from cdp.orchestration import (
    PUBLISHED_WAREHOUSE,
    dag_defaults,
    pipeline_schedule,
    publication_extra,
    run_stage,
    task_context,
)


@dag(
    dag_id="cdp_pipeline",
    schedule=pipeline_schedule(),
    **dag_defaults(__doc__, params={
        "withdraw": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[a-z][a-z0-9_]*/.+$"},
            title="Withdraw deliveries",
            description="Take these deliveries back before ingest, each as "
            "<source>/<file name or sha256>: their rows leave raw and quarantine and the same "
            "bytes are not loaded again (cdp ingest reinstate undoes it).",
        ),
        "full_refresh": Param(
            False,
            type="boolean",
            title="Full refresh",
            description="Rebuild incremental dbt models and the identity state (normalised "
            "records, Splink scores) from raw (dbt --full-refresh). The suppression log and "
            "the profile-id history are never rebuilt: they keep what no source holds any "
            "more.",
        ),
    }),
)
def cdp_pipeline() -> None:
    @task(retries=0)
    def registered_sources() -> list[str]:
        """Every configuration file checked (a typo fails here, naming file and key)."""
        return list(run_stage("registered_sources"))

    @task
    def prepare(sources: list[str]) -> list[str]:
        """Clear leftovers of killed publications, withdraw the deliveries the run names, then
        hand the sources on to ingest."""
        run_stage("remove_publish_leftovers")
        targets = list(get_current_context()["params"].get("withdraw") or [])
        if targets:
            run_stage("withdraw_deliveries", targets)
        return sources

    # One writer at a time: mapped ingest instances never run concurrently.
    @task(max_active_tis_per_dag=1, map_index_template="{{ task.op_kwargs['source'] }}")
    def ingest(source: str) -> dict[str, Any]:
        return run_stage("ingest_source", source)

    @task
    def train_identity(ingested: list[dict[str, Any]]) -> dict[str, Any]:
        """Build up to the normalised identity records; train the Splink model if needed."""
        return run_stage("train_identity", _full_refresh())

    @task
    def build(trained: dict[str, Any]) -> dict[str, Any]:
        return run_stage("build", _full_refresh())

    @task(retries=0)
    def quality_gate(built: dict[str, Any]) -> dict[str, Any]:
        return run_stage("quality_gate", _full_refresh())

    @task(outlets=[PUBLISHED_WAREHOUSE])
    def publish(gated: dict[str, Any]) -> dict[str, Any]:
        """Swap the audited build in; the asset event tells the export DAG where and when."""
        report = run_stage("publish")
        events = get_current_context()["outlet_events"]
        events[PUBLISHED_WAREHOUSE].extra = publication_extra(task_context())
        return report

    @task
    def report(published: dict[str, Any]) -> dict[str, Any]:
        """The controlling report of this publication (reports/kpi/)."""
        return run_stage("report")

    # Each stage takes the previous one's report: the data dependency orders the tasks.
    ingested = ingest.expand(source=prepare(registered_sources()))
    report(publish(quality_gate(build(train_identity(ingested)))))


def _full_refresh() -> bool:
    return bool(get_current_context()["params"].get("full_refresh"))


cdp_pipeline_dag = cdp_pipeline()
