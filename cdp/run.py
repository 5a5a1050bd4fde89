"""``cdp run``: the whole DAG in-process with ``dag.test()`` plus a summary of what came out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cdp.airflow_env import ensure_metadata_db
from cdp.demo.generator import TRUTH_FILE
from cdp.demo.model import REFERENCE_DATE
from cdp.pipeline import read_stage_reports
from cdp.settings import REPO_ROOT
from core.paths import DataPaths

STAGES = (
    "check", "withdraw", "ingest", "train_identity", "build", "identity", "quality_gate", "publish",
    "export", "report", "evaluate",
)
"""Order of the summary's timing rows; identity (normalise, link, cluster) runs inside the dbt
build and is part of it and of train_identity."""


@dataclass
class RunSummary:
    run_id: str
    state: str
    seconds: float
    as_of: str | None = None
    records_per_source: dict[str, int] = field(default_factory=dict)
    rejected_per_source: dict[str, int] = field(default_factory=dict)
    #: of the quarantined rows, those dated after the run's as-of time plus tolerance
    future_dated_per_source: dict[str, int] = field(default_factory=dict)
    future_dated_after: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    profiles: int | None = None
    identity: dict[str, Any] | None = None
    #: what the identity stage computed itself rather than took from the identity state
    identity_touched: dict[str, int] | None = None
    quality: dict[str, Any] | None = None
    published: Path | None = None
    exports: list[dict[str, Any]] = field(default_factory=list)
    failed_tasks: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def demo_as_of(paths: DataPaths) -> datetime | None:
    """The demo generator's reference date when ``paths`` holds generated demo data (its
    ground truth), else None: the demo's records end there, so traits are computed as of it
    rather than aged by however long ago the data was generated."""
    return REFERENCE_DATE.replace(tzinfo=UTC) if (paths.truth / TRUTH_FILE).exists() else None


def run_pipeline(
    paths: DataPaths, withdraw: list[str] | None = None, as_of: datetime | None = None,
    full_refresh: bool = False,
) -> RunSummary:
    """Run ``cdp_pipeline`` once on this data directory, then (when it published) ``cdp_export``
    as the publication would trigger it, and summarise both.

    ``withdraw``: deliveries (``<source>/<file or sha256>``) to take back before ingest.
    ``as_of``: the run's clock (the DAG's ``as_of`` param); default :func:`demo_as_of` on
    generated demo data, else the DAG's own (the time the run starts).
    ``full_refresh``: rebuild incremental models and the identity state from raw (the DAG's
    ``full_refresh`` param).
    """
    paths.ensure()
    ensure_metadata_db(paths)
    started = time.perf_counter()
    conf: dict[str, Any] = {"cdp_home": str(paths.home)}
    as_of = as_of or demo_as_of(paths)
    if as_of is not None:
        conf["as_of"] = as_of.isoformat()
    pipeline_run = load_dag("cdp_pipeline").test(
        run_conf={**conf, "withdraw": list(withdraw or []), "full_refresh": full_refresh})
    runs = [pipeline_run]
    if str(pipeline_run.state) == "success":
        # as a publication triggers it: on the publishing run's clock, under its run id
        clock = read_stage_reports(paths, pipeline_run.run_id).get("check", {}).get("as_of")
        runs.append(load_dag("cdp_export").test(run_conf={
            **conf, **({"as_of": clock} if clock else {}),
            "publication_run_id": pipeline_run.run_id}))
    seconds = time.perf_counter() - started
    state = next((str(run.state) for run in runs if str(run.state) != "success"), "success")
    summary = summarise(paths, pipeline_run.run_id, state, seconds)
    summary.failed_tasks = {key: value for run in runs for key, value in _failed_tasks(run).items()}
    return summary


def load_dag(dag_id: str = "cdp_pipeline") -> Any:
    """A DAG of dags/ by its id (``dags/<dag_id>.py`` defines ``<dag_id>_dag``)."""
    return getattr(load_dag_module(dag_id), f"{dag_id}_dag")


def load_dag_module(name: str = "cdp_pipeline") -> Any:
    """Import dags/<name>.py by path (dags/ is Airflow's folder, not a Python package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_dag_module",
                                                  REPO_ROOT / "dags" / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load dags/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _failed_tasks(dag_run: Any) -> dict[str, str]:
    failed: dict[str, str] = {}
    for ti in dag_run.get_task_instances():
        if str(ti.state) in {"failed", "upstream_failed"}:
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            failed[key] = str(ti.state)
    return failed


def summarise(paths: DataPaths, run_id: str, state: str, seconds: float) -> RunSummary:
    reports = read_stage_reports(paths, run_id)
    summary = RunSummary(run_id=run_id, state=state, seconds=seconds,
                         as_of=reports.get("check", {}).get("as_of"))
    for name, report in reports.items():
        stage = name.split("__", 1)[0]
        if stage == "identity":  # written by the identity model from inside the dbt build
            summary.stage_seconds[stage] = float(report.get("seconds_total", 0.0))
            if "touched" in report:
                summary.identity_touched = {**report["touched"],
                                            "records": int(report.get("records", 0))}
            continue
        if report.get("error"):
            summary.errors[name.replace("__", " ")] = str(report["error"])
        summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + float(
            report.get("seconds", 0.0)
        )
        if stage == "ingest":
            source = report["source"]
            summary.records_per_source[source] = int(report.get("rows_loaded", 0))
            summary.rejected_per_source[source] = int(report.get("rows_rejected", 0))
            summary.future_dated_per_source[source] = int(report.get("rows_future_dated", 0))
            summary.future_dated_after = report.get("future_dated_after")
    summary.quality = reports.get("quality_gate")
    # The publish stage writes its report only once the new file has been swapped in.
    if "publish" in reports and paths.published_db.exists():
        summary.published = paths.published_db
        summary.exports = reports.get("export", {}).get("exports", [])
        with duckdb.connect(str(paths.published_db), read_only=True) as con:
            row = con.execute("SELECT count(*) FROM main.dim_profiles").fetchone()
            summary.profiles = int(row[0]) if row else 0
        truth = paths.truth / TRUTH_FILE
        if truth.exists():
            started = time.perf_counter()
            summary.identity = evaluate_published(paths.published_db, truth)
            summary.stage_seconds["evaluate"] = round(time.perf_counter() - started, 2)
    return summary


def evaluate_published(published_db: Path, truth_csv: Path) -> dict[str, Any]:
    """Pairwise precision / recall / F1 of the published identity graph against ground truth,
    and the same per ``pattern`` label when the truth file has that column (``patterns``)."""
    import dataclasses

    import pandas as pd

    from identity.diagnostics import pattern_metrics
    from identity.evaluate import evaluate

    with duckdb.connect(str(published_db), read_only=True) as con:
        clusters = con.execute(
            "SELECT source, record_id, profile_id FROM main.fct_identity_graph"
        ).df()
    truth = pd.read_csv(truth_csv, dtype=str)
    figures: dict[str, Any] = dataclasses.asdict(evaluate(clusters, truth))
    figures["patterns"] = {label: metrics.as_dict()
                           for label, metrics in pattern_metrics(clusters, truth).items()}
    return figures
