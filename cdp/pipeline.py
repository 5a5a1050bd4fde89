"""The pipeline's stages as plain functions: ingest → build → gate → publish → export.

The Airflow DAG calls these (thin TaskFlow wrappers), so the same code runs under the
scheduler, under ``dag.test()`` for ``cdp run``, and in tests. Each stage writes a small JSON
report under ``reports/runs/<run_id>/`` (counts, seconds, never personal data) that the run
summary and the Airflow task logs share.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from cdp.settings import DataPaths, config_dir

log = logging.getLogger(__name__)


def run_report_dir(paths: DataPaths, run_id: str) -> Path:
    return paths.reports / "runs" / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def write_stage_report(
    paths: DataPaths, run_id: str, stage: str, report: dict[str, Any]
) -> dict[str, Any]:
    """Persist a stage's report, announce it, and return it as plain JSON (safe for XCom)."""
    text = json.dumps(report, indent=2, default=str)
    folder = run_report_dir(paths, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stage}.json").write_text(text)
    _announce(stage, report)
    return json.loads(text)


def _announce(stage: str, report: dict[str, Any]) -> None:
    """One progress line per finished stage (counts and seconds only, never personal data)."""
    from rich.console import Console

    failed = report.get("error") or report.get("passed") is False
    mark = "[red]✗[/]" if failed else "[green]✓[/]"
    detail = ""
    if "rows_loaded" in report:
        rejected = report.get("rows_rejected", 0)
        detail = f"{report['rows_loaded']:,} rows loaded, {rejected:,} quarantined"
    elif "tables" in report:
        detail = f"{len(report['tables'])} tables"
    elif "exports" in report:
        detail = ", ".join(f"{e['segment']}: {e['rows']:,} rows" for e in report["exports"])
    elif "suites" in report:
        passed = sum(s["passed"] for s in report["suites"])
        failing = sum(s["failed"] for s in report["suites"])
        detail = f"{len(report['suites'])} suites, {passed} expectations passed, {failing} failed"
    elif "statuses" in report:
        detail = ", ".join(f"{n} {s}" for s, n in sorted(report["statuses"].items()))
    Console(stderr=True, highlight=False).print(
        f"{mark} {stage.replace('__', ' ')}: {detail} ({report.get('seconds', 0):.1f} s)"
    )


def read_stage_reports(paths: DataPaths, run_id: str) -> dict[str, dict[str, Any]]:
    folder = run_report_dir(paths, run_id)
    if not folder.exists():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def registered_sources() -> list[str]:
    from ingest.registry import load_registry

    return sorted(load_registry(config_dir() / "sources.yml").sources)


def ingest_source(paths: DataPaths, source: str, run_id: str) -> dict[str, Any]:
    """Load one registered source's landing files into raw.<source> (exactly once per file)."""
    from cdp.locking import writer_lock
    from ingest.loader import load_all
    from ingest.registry import load_registry

    started = time.perf_counter()
    registry = load_registry(config_dir() / "sources.yml")
    report: dict[str, Any] = {"source": source}
    try:
        with writer_lock(paths):
            reports = load_all(paths.build_db, registry, paths.landing, run_id, sources=[source])
    except Exception as error:
        report.update(seconds=round(time.perf_counter() - started, 2), error=str(error))
        write_stage_report(paths, run_id, f"ingest__{source}", report)
        raise
    report["seconds"] = round(time.perf_counter() - started, 2)
    for item in reports:
        report.update(_as_dict(item))
    return write_stage_report(paths, run_id, f"ingest__{source}", report)


def build(paths: DataPaths, run_id: str) -> dict[str, Any]:
    """dbt build: staging, identity (Splink inside dbt), marts, segments, and their dbt tests."""
    from cdp.dbt import dbt_build
    from cdp.locking import writer_lock

    started = time.perf_counter()
    with writer_lock(paths):
        outcome = dbt_build(paths, run_id)
    report = {
        "seconds": round(time.perf_counter() - started, 2),
        "statuses": dict(outcome.statuses),
        "slowest_nodes": dict(
            sorted(outcome.node_seconds.items(), key=lambda kv: -kv[1])[:5]
        ),
    }
    return write_stage_report(paths, run_id, "build", report)


def quality_gate(paths: DataPaths, run_id: str) -> dict[str, Any]:
    """Great Expectations checkpoints on the build file; raises when any expectation fails."""
    from quality.gate import QualityGateFailed, run_gate

    started = time.perf_counter()
    try:
        result = run_gate(
            paths.build_db,
            ["raw", "identity", "profiles"],
            paths.reports,
            thresholds=config_dir() / "quality.yml",
            run_id=run_id,
            previous_db=paths.published_db if paths.published_db.exists() else None,
            sources_config=config_dir() / "sources.yml",
        )
    except QualityGateFailed as failed:
        # The verdict line only: suites, failures and notes are in the report's own fields.
        verdict = str(failed).splitlines()[0]
        write_stage_report(
            paths,
            run_id,
            "quality_gate",
            {"seconds": round(time.perf_counter() - started, 2), "passed": False,
             "error": verdict, **_as_dict(failed.result)},
        )
        raise
    report = {"seconds": round(time.perf_counter() - started, 2), "passed": True}
    report.update(_as_dict(result))
    return write_stage_report(paths, run_id, "quality_gate", report)


def publish(paths: DataPaths, run_id: str) -> dict[str, Any]:
    """Swap the audited marts into published.duckdb atomically."""
    from profiles.publish import publish as publish_file

    started = time.perf_counter()
    publication = publish_file(paths.build_db, paths.published_db, run_id)
    report = {
        "seconds": round(time.perf_counter() - started, 2),
        "published": str(publication.path),
        "tables": publication.tables,
    }
    return write_stage_report(paths, run_id, "publish", report)


def export(paths: DataPaths, run_id: str) -> dict[str, Any]:
    """Export every segment, through the suppression chain, under exports/<segment>/<run_id>/."""
    from profiles.export import export_all

    started = time.perf_counter()
    exports = export_all(paths.published_db, paths.exports, run_id)
    report = {
        "seconds": round(time.perf_counter() - started, 2),
        "exports": [
            {"segment": e.manifest.segment, "rows": e.manifest.rows, "path": str(e.members_file),
             "candidates": e.manifest.candidates,
             "dropped": {s["step"]: s["dropped"] for s in e.manifest.steps}}
            for e in exports
        ],
    }
    return write_stage_report(paths, run_id, "export", report)


def _as_dict(obj: object) -> dict[str, Any]:
    """Stage results are dataclasses or dicts; reports want plain JSON-able dicts."""
    import dataclasses

    if obj is None:
        return {}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return obj
    return {"result": str(obj)}
