"""Run dbt in-process against the build warehouse of one data directory.

What stays the same from run to run comes in as ``--vars`` (the build file for
``profiles.yml``, the vocabulary, survivorship rules, identity settings, overrides and the
identity model file); dbt Python models read theirs with ``dbt.config.get``.  What every run
changes - its id and clock - comes in as two environment variables of the invocation
(:func:`run_environment`, read with ``env_var``): dbt re-parses the whole project when a var
changes (3-4 s, twice per run) but only the few files that read an environment variable
when that changes.  The pipeline runs dbt twice per build, around the identity training step
(:mod:`identity.training`), one writer at a time on the DuckDB file.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cdp.context import RunContext
from cdp.dbt_sources import dbt_source_vars
from cdp.settings import REPO_ROOT
from core.vocabulary import dbt_vars
from ingest.roles import role_declarations

log = logging.getLogger(__name__)


class DbtBuildFailed(RuntimeError):
    """dbt reported an error or a failing test; the build file is not published."""


class DbtCrashed(DbtBuildFailed):
    """dbt itself failed (not a model or a test): worth another try."""


@dataclass
class DbtOutcome:
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    node_seconds: dict[str, float] = field(default_factory=dict)


def run_dbt(ctx: RunContext, args: list[str]) -> DbtOutcome:
    """Invoke ``dbt <args>`` on the run's build file and raise if anything failed; vars the
    caller passes with ``--vars`` win over the ones :func:`config_vars` sets."""
    from dbt.cli.main import dbtRunner

    paths = ctx.paths.ensure()
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    target = paths.home / "dbt_target"
    args, given = _split_vars(args)
    given = {**dbt_source_vars(ctx.registry), **given}  # the registry's dbt sources
    saved = {name: os.environ.get(name) for name in RUN_ENVIRONMENT}
    os.environ.update(run_environment(ctx))
    try:
        result = dbtRunner(callbacks=[_log_node_progress]).invoke(
            [
                *args,
                "--vars", json.dumps({**config_vars(ctx), **given}),
                "--project-dir", str(REPO_ROOT),
                "--profiles-dir", str(REPO_ROOT / "dbt_project"),
                "--target-path", str(target),
                "--log-path", str(paths.home / "logs" / "dbt"),
                # Nothing of dbt's own on stdout: its error summary quotes values (a cast
                # error names the value, which may be an e-mail address). The task log gets
                # a line per node from _log_node_progress; the details stay in logs/dbt.
                "--log-level", "none",
            ]
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _release_warehouse()
    outcome = DbtOutcome()
    for node_result in getattr(result.result, "results", None) or []:
        status = str(node_result.status)
        name = node_result.node.name
        outcome.statuses[status] += 1
        outcome.node_seconds[name] = float(node_result.execution_time or 0.0)
        if status in {"error", "fail", "runtime error"}:
            outcome.failures.append(f"{name}: {status}: {_failure_summary(node_result.message)}")
    if result.exception is not None:
        raise DbtCrashed(f"dbt {' '.join(args)} crashed: {result.exception}")
    if not result.success:
        detail = "; ".join(outcome.failures) or "see the dbt log under logs/dbt"
        raise DbtBuildFailed(f"dbt {' '.join(args)} failed: {detail}")
    return outcome


#: The environment variables :func:`run_environment` sets for one dbt invocation.
RUN_ENVIRONMENT = ("CDP_RUN_ID", "CDP_AS_OF")


def run_environment(ctx: RunContext) -> dict[str, str]:
    """What changes every run, as dbt reads it with ``env_var``: the run id
    (``CDP_RUN_ID``) and the run's clock (``CDP_AS_OF``, naive UTC: traits are computed as of
    it)."""
    return {"CDP_RUN_ID": ctx.run_id, "CDP_AS_OF": ctx.as_of_naive.isoformat(sep=" ")}


def config_vars(ctx: RunContext) -> dict[str, object]:
    """What dbt reads as vars (the same every run, so dbt's partial parsing holds): the build
    file (``profiles.yml``), the vocabulary, survivorship rules, and for the identity models
    their settings, the manual overrides and the model file :func:`identity_model_file`
    names, so changing a rule is an edit of config/, not of SQL."""
    from identity.overrides import overrides_to_records

    model = identity_model_file(ctx)
    return {
        "build_db": str(ctx.paths.build_db),
        # the export manifests the activation KPIs read (fct_kpi_activation)
        "exports_dir": str(ctx.paths.exports),
        "survivorship": ctx.survivorship,
        **dbt_vars(),
        "identity": ctx.identity.to_vars(),
        "identity_overrides": overrides_to_records(ctx.identity_overrides),
        "identity_model": str(model) if model is not None else None,
        "roles": role_declarations(ctx.registry),
    }


def _log_node_progress(event: Any) -> None:
    """One log line per dbt node started and finished (name, status, seconds): the task log
    shows which model runs and which failed, while dbt itself stays ``--quiet``. Node names
    and statuses only; a failing test's message (it may quote data) stays in dbt's own log."""
    name = event.info.name
    if name not in {"NodeStart", "NodeFinished"}:
        return
    node = event.data.node_info
    if node.resource_type not in {"model", "test", "unit_test", "seed", "snapshot"}:
        return
    if name == "NodeStart":
        log.debug("dbt %s %s started", node.resource_type, node.node_name)
        return
    result = event.data.run_result
    level = logging.WARNING if result.status in {"error", "fail", "warn"} else logging.INFO
    log.log(level, "dbt %s %s: %s (%.1f s)", node.resource_type, node.node_name,
            result.status, result.execution_time)


def identity_model_file(ctx: RunContext) -> Path | None:
    """The Splink model file the links model loads per ``model`` in identity.yml (None:
    estimated in memory); after the training step, that is the version it saved."""
    from identity.model_store import plan_model

    return plan_model(ctx.identity, ctx.paths.models, REPO_ROOT).path


def _split_vars(args: list[str]) -> tuple[list[str], dict[str, object]]:
    """``args`` without a caller's ``--vars <yaml>``, and those vars (they win over ours)."""
    if "--vars" not in args:
        return args, {}
    at = args.index("--vars")
    given = yaml.safe_load(args[at + 1]) or {}
    return [*args[:at], *args[at + 2:]], dict(given)


def _release_warehouse() -> None:
    """dbt-duckdb caches its DuckDB handle for the life of the process; close it so the gate
    and publish (and the next run in this process) can open the file."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def _failure_summary(message: object) -> str:
    """Where it failed and the exception type of a Python model: values in an exception's text
    may be personal data, so they stay in dbt's own log."""
    lines = [line.strip() for line in str(message or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    exception = lines[-1].split(":", 1)[0] if len(lines) > 1 else ""
    suffix = f" → {exception} (details in logs/dbt/dbt.log)" if exception.isidentifier() else ""
    return f"{lines[0][:300]}{suffix}"


#: What the first dbt invocation of a build makes: the identity records, normalised, which
#: the training step reads before the links model runs (dbt's graph operator syntax).
UP_TO_TRAINING = "+int_identity__normalised"


def dbt_build(ctx: RunContext, part: str = "all", full_refresh: bool = False) -> DbtOutcome:
    """``dbt build``: ``part='input'`` up to the records the identity training step reads,
    ``'rest'`` everything else (after training), ``'all'`` both in one go. ``full_refresh``
    rebuilds incremental models, except those configured ``full_refresh=false`` (the
    suppression log and the profile-id history keep what no source holds any more), and
    starts the identity state (normalised records, Splink scores) afresh."""
    selection = {"all": [], "input": ["--select", UP_TO_TRAINING],
                 "rest": ["--exclude", UP_TO_TRAINING]}[part]
    refresh = ["--full-refresh", "--vars", json.dumps({"identity_full_refresh": True})] \
        if full_refresh else []
    return run_dbt(ctx, ["build", *selection, *refresh])
