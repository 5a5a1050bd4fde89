"""What every DAG of the product shares: its params, the published-warehouse asset, the retry
policy and how a task turns its Airflow context into a :class:`cdp.context.RunContext`.

Imported by the DAG files at parse time, so it imports nothing heavy at module level: the
pipeline, dbt and the warehouse are imported inside the task that runs them.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, get_current_context
from airflow.sdk.exceptions import AirflowFailException

#: Written by cdp_pipeline's publish task; the export DAG is scheduled on it. Its events carry
#: the publishing run's data directory, configuration folder, run id and clock.
PUBLISHED_WAREHOUSE = Asset(name="cdp_published_warehouse", uri="cdp://warehouse/published")

#: Every task is idempotent (ingest loads a file once by its sha256, the build recomputes from
#: raw, publish swaps a whole file, export rewrites its run's folder), so a task that failed for
#: a passing reason (a killed worker, a busy lock) may simply run again. A verdict (invalid
#: configuration, a failed gate or dbt test) fails at once: see :func:`run_stage`.
DEFAULT_ARGS: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(seconds=30),
                                "retry_exponential_backoff": True}

#: cdp_pipeline's schedule: a cron expression, an Airflow preset or ``none`` (runs only when
#: triggered: by hand, the API or cdp_landing_watch). Read when the DAG file is parsed.
SCHEDULE_VARIABLE = "CDP_PIPELINE_SCHEDULE"

AS_OF_PATTERN = (r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                 r"(Z|[+-]\d{2}:?\d{2})?)?$")


def dag_defaults(doc: str | None, *, tags: tuple[str, ...] = (),
                 params: dict[str, Param] | None = None) -> dict[str, Any]:
    """The ``@dag`` arguments every DAG of the product shares: one run at a time (one writer
    per DuckDB file), no catch-up of missed days (a run recomputes from everything landed),
    the retry policy, the ``cdp`` tag, the module docstring as its documentation and the
    run-context params (plus the DAG's own)."""
    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": DEFAULT_ARGS,
        "tags": ["cdp", *tags],
        "doc_md": doc,
        "params": {**context_params(), **(params or {})},
    }


def pipeline_schedule(environ: dict[str, str] | None = None) -> str | None:
    """cdp_pipeline's schedule from ``$CDP_PIPELINE_SCHEDULE`` (default ``@daily``; ``none``:
    no schedule)."""
    value = (os.environ if environ is None else environ).get(SCHEDULE_VARIABLE, "").strip()
    if not value:
        return "@daily"
    return None if value.lower() == "none" else value


def context_params() -> dict[str, Param]:
    """The params every DAG declares: where the data and configuration live, and the clock."""
    return {
        "cdp_home": Param(
            None, type=["null", "string"], title="Data directory",
            description="Where landing files, warehouse, exports and reports live "
            "(default: $CDP_HOME, else ./data)."),
        "cdp_config": Param(
            None, type=["null", "string"], title="Configuration folder",
            description="Folder with sources.yml and the other YAML configuration "
            "(default: $CDP_CONFIG, else the repository's config/)."),
        "as_of": Param(
            None, type=["null", "string"], pattern=AS_OF_PATTERN, title="As-of time",
            description="The run's clock, ISO 8601 (2026-11-01T00:00; UTC unless an offset "
            "is given): traits are computed as of it, suppression windows end at it, records "
            "dated later (plus quality.yml future_dated_tolerance_hours) are quarantined. "
            "Default: the run's data interval end."),
    }


def run_stage(name: str, *args: Any) -> Any:
    """Run one stage of :mod:`cdp.pipeline` in this task's run context; a verdict fails the
    task at once (:func:`verdict_of`), any other error is left to the retry policy."""
    import cdp.pipeline as pipeline

    try:
        return getattr(pipeline, name)(task_context(), *args)
    except Exception as error:
        verdict = verdict_of(error)
        if verdict is not None:
            raise verdict from error
        raise


def verdict_of(error: BaseException) -> AirflowFailException | None:
    """The final failure ``error`` is, or None when another try may help. Invalid
    configuration, a failed quality gate and a failing dbt model or test are verdicts on the
    data or the configuration: trying again gives the same answer, as does a landing file
    ingest cannot read or that lacks a mapped column, an unknown source or delivery
    (:class:`ingest.errors.IngestVerdict`) and a privacy request that names nobody or is
    malformed. The message is the error's own (file, key or expectation; never personal
    data)."""
    from cdp.context import InvalidConfiguration
    from cdp.dbt import DbtBuildFailed, DbtCrashed
    from ingest.errors import IngestError
    from privacy.identifiers import InvalidRequest
    from privacy.locate import UnknownPerson
    from quality.gate import QualityGateFailed

    if isinstance(error, DbtCrashed):
        return None
    if isinstance(error, InvalidConfiguration | QualityGateFailed | DbtBuildFailed
                  | InvalidRequest | UnknownPerson):
        return AirflowFailException(str(error))
    if isinstance(error, IngestError) and error.final:
        return AirflowFailException(str(error))
    return None


def task_context() -> Any:
    """The :class:`RunContext` of the running task: its params, or for a run triggered by a
    publication the publishing run's data directory, configuration, run id and clock (a
    ``publication_run_id`` param names that run by hand)."""
    from cdp.context import RunContext, parse_as_of

    context = get_current_context()
    params = context["params"]
    published = _publication_event(context)
    if published is not None and not params.get("cdp_home"):
        return RunContext.at_edge(published["cdp_home"], published.get("cdp_config"),
                                  published["run_id"], parse_as_of(published["as_of"]))
    run_id = params.get("publication_run_id") or context["run_id"]
    return RunContext.at_edge(params.get("cdp_home"), params.get("cdp_config"), run_id,
                              run_clock(context))


def publication_extra(ctx: Any) -> dict[str, Any]:
    """What a publication's asset event tells the DAGs scheduled on it."""
    return {"cdp_home": str(ctx.paths.home), "cdp_config": str(ctx.config.folder),
            "run_id": ctx.run_id, "as_of": ctx.as_of.isoformat()}


def _publication_event(context: Any) -> dict[str, Any] | None:
    """What the newest published-warehouse event that triggered this run says, if any."""
    events = (context.get("triggering_asset_events") or {}).get(PUBLISHED_WAREHOUSE) or []
    extra = dict(events[-1].extra or {}) if events else {}
    return extra if {"cdp_home", "run_id", "as_of"} <= extra.keys() else None


def run_clock(context: Any) -> datetime:
    """The run's clock: the ``as_of`` param, the data interval end, the logical date, or when
    the run was queued (an asset-triggered or manual run may have no logical date): the same
    for every task of a run."""
    from cdp.context import parse_as_of

    given = context["params"].get("as_of")
    if given:
        return parse_as_of(given)
    for key in ("data_interval_end", "logical_date"):
        if context.get(key) is not None:
            return context[key]
    return context["dag_run"].run_after
