"""Run dbt in-process against the build warehouse of one data directory.

One dbt invocation per pipeline run keeps a single writer on the DuckDB file; the identity
step (Splink) runs inside that build as a dbt-duckdb Python model.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field

from cdp.settings import REPO_ROOT, DataPaths, config_dir


class DbtBuildFailed(RuntimeError):
    """dbt reported an error or a failing test; the build file is not published."""


@dataclass
class DbtOutcome:
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    node_seconds: dict[str, float] = field(default_factory=dict)


def run_dbt(paths: DataPaths, args: list[str], run_id: str = "manual") -> DbtOutcome:
    """Invoke ``dbt <args>`` on this data directory's build file and raise if anything failed."""
    from dbt.cli.main import dbtRunner

    paths.ensure()
    os.environ["CDP_BUILD_DB"] = str(paths.build_db)
    os.environ["CDP_HOME"] = str(paths.home)
    os.environ["CDP_RUN_ID"] = run_id
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    target = paths.home / "dbt_target"
    try:
        result = dbtRunner().invoke(
            [
                *args,
                *(["--vars", json.dumps(config_vars())] if _takes_vars(args) else []),
                "--project-dir", str(REPO_ROOT),
                "--profiles-dir", str(REPO_ROOT / "dbt_project"),
                "--target-path", str(target),
                "--log-path", str(paths.home / "logs" / "dbt"),
                "--quiet",
            ]
        )
    finally:
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
        raise DbtBuildFailed(f"dbt {' '.join(args)} crashed: {result.exception}")
    if not result.success:
        detail = "; ".join(outcome.failures) or "see the dbt log under logs/dbt"
        raise DbtBuildFailed(f"dbt {' '.join(args)} failed: {detail}")
    return outcome


def config_vars() -> dict[str, object]:
    """YAML configuration dbt models read as vars (survivorship rules), so changing a rule
    is an edit of config/, not of SQL."""
    import yaml

    path = config_dir() / "survivorship.yml"
    survivorship = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    from core.vocabulary import dbt_vars

    return {"survivorship": (survivorship or {}).get("attributes", {}), **dbt_vars()}


def _takes_vars(args: list[str]) -> bool:
    """Commands that compile models accept --vars; an explicit --vars from the caller wins."""
    compiling = {"build", "run", "test", "compile", "show", "seed", "snapshot", "list", "ls"}
    return bool(args) and args[0] in compiling and "--vars" not in args


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


def dbt_build(paths: DataPaths, run_id: str) -> DbtOutcome:
    return run_dbt(paths, ["build"], run_id)


