"""cdp_pipeline: ingest every registered source → train identity (dbt up to the normalised
identity records, then the Splink model if needed) → dbt build (linkage inside) → quality gate →
publish (write-audit-publish) → export segments.

Thin TaskFlow wrappers around ``cdp.pipeline``; nothing heavy happens at parse time (the
registry is read by a task, not here). Each task resolves its run context once: the data
directory from the ``cdp_home`` param, else ``CDP_HOME``, else ``./data``; the configuration
folder from ``cdp_config``, else ``CDP_CONFIG``, else the repository's ``config/``; the run's
clock (traits, suppression windows, future-dated records) from the ``as_of`` param, else the
run's data interval end (a scheduled run: its logical date's interval), else its logical
date, else when the run was queued: the same for every task of a run, never the wall clock
of a task and never the newest timestamp in the data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

PUBLISHED_WAREHOUSE = Asset(name="cdp_published_warehouse", uri="cdp://warehouse/published")


def _stage(name: str, *args: Any) -> Any:
    """Run one stage of cdp.pipeline in this task's run context."""
    import cdp.pipeline as pipeline
    from cdp.context import RunContext

    context = get_current_context()
    params = context["params"]
    ctx = RunContext.at_edge(params.get("cdp_home"), params.get("cdp_config"),
                             context["run_id"], _as_of(context))
    return getattr(pipeline, name)(ctx, *args)


def _as_of(context: Any) -> datetime:
    """The run's clock: the ``as_of`` param, the data interval end, the logical date, or when
    the run was queued (an asset-triggered or manual run may have no logical date)."""
    from cdp.context import parse_as_of

    given = context["params"].get("as_of")
    if given:
        return parse_as_of(given)
    for key in ("data_interval_end", "logical_date"):
        if context.get(key) is not None:
            return context[key]
    return context["dag_run"].run_after


@dag(
    dag_id="cdp_pipeline",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},
    tags=["cdp"],
    doc_md=__doc__,
    params={
        "cdp_home": Param(
            None,
            type=["null", "string"],
            title="Data directory",
            description="Where landing files, warehouse, exports and reports live "
            "(default: $CDP_HOME, else ./data).",
        ),
        "cdp_config": Param(
            None,
            type=["null", "string"],
            title="Configuration folder",
            description="Folder with sources.yml and the other YAML configuration "
            "(default: $CDP_CONFIG, else the repository's config/).",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
            r"(Z|[+-]\d{2}:?\d{2})?)?$",
            title="As-of time",
            description="The run's clock, ISO 8601 (2026-11-01T00:00; UTC unless an offset "
            "is given): traits are computed as of it, suppression windows end at it, records "
            "dated later (plus quality.yml future_dated_tolerance_hours) are quarantined. "
            "Default: the run's data interval end.",
        ),
        "withdraw": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[a-z][a-z0-9_]*/.+$"},
            title="Withdraw deliveries",
            description="Take these deliveries back before ingest, each as "
            "<source>/<file name or sha256>: their rows leave raw and quarantine and the same "
            "bytes are not loaded again (cdp ingest reinstate undoes it).",
        ),
    },
)
def cdp_pipeline() -> None:
    @task
    def registered_sources() -> list[str]:
        return list(_stage("registered_sources"))

    @task
    def prepare(sources: list[str]) -> list[str]:
        """Clear leftovers of killed publications, withdraw the deliveries the run names, then
        hand the sources on to ingest."""
        _stage("remove_publish_leftovers")
        targets = list(get_current_context()["params"].get("withdraw") or [])
        if targets:
            _stage("withdraw_deliveries", targets)
        return sources

    # One writer at a time: mapped ingest instances never run concurrently.
    @task(max_active_tis_per_dag=1, map_index_template="{{ task.op_kwargs['source'] }}")
    def ingest(source: str) -> dict[str, Any]:
        return _stage("ingest_source", source)

    @task
    def train_identity(ingested: list[dict[str, Any]]) -> dict[str, Any]:
        """Build up to the normalised identity records; train the Splink model if needed."""
        return _stage("train_identity")

    @task
    def build(trained: dict[str, Any]) -> dict[str, Any]:
        return _stage("build")

    @task
    def quality_gate(built: dict[str, Any]) -> dict[str, Any]:
        return _stage("quality_gate")

    @task(outlets=[PUBLISHED_WAREHOUSE])
    def publish(gated: dict[str, Any]) -> dict[str, Any]:
        return _stage("publish")

    @task
    def export(published: dict[str, Any]) -> dict[str, Any]:
        return _stage("export")

    # Each stage takes the previous one's report: the data dependency orders the tasks.
    ingested = ingest.expand(source=prepare(registered_sources()))
    export(publish(quality_gate(build(train_identity(ingested)))))


cdp_pipeline_dag = cdp_pipeline()
