"""The pipeline's stages as plain functions: ingest → build → gate → publish → export.

The Airflow DAG calls these (thin TaskFlow wrappers), so the same code runs under the
scheduler, under ``dag.test()`` for ``cdp run``, and in tests. Each stage writes a small JSON
report under ``reports/runs/<run_id>/`` (counts, seconds, never personal data) that the run
summary and the Airflow task logs share.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdp.context import InvalidConfiguration, RunContext, check_settings
from core.paths import DataPaths

if TYPE_CHECKING:
    from privacy.forget import ForgetReport
    from privacy.identifiers import Identifier

log = logging.getLogger(__name__)


def write_stage_report(ctx: RunContext, stage: str, report: dict[str, Any]) -> dict[str, Any]:
    """Persist a stage's report, announce it, and return it as plain JSON (safe for XCom)."""
    text = json.dumps(report, indent=2, default=str)
    folder = ctx.paths.run_reports(ctx.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stage}.json").write_text(text)
    _announce(stage, report)
    return json.loads(text)


def _announce(stage: str, report: dict[str, Any]) -> None:
    """One progress line per finished stage, logged (counts and seconds only, never personal
    data): a task log shows it, and ``cdp run`` shows it on the terminal. A gate adds its
    result table, one line per suite."""
    failed = report.get("error") or report.get("passed") is False
    detail = ""
    if "rows_loaded" in report:
        rejected, future = report.get("rows_rejected", 0), report.get("rows_future_dated", 0)
        erased = report.get("rows_erased", 0)
        detail = f"{report['rows_loaded']:,} rows loaded, {rejected:,} quarantined"
        why = [f"{future:,} dated after {report['future_dated_after']}"] if future else []
        why += [f"{erased:,} erased"] if erased else []
        if why:
            detail += f" ({', '.join(why)})"
    elif "tables" in report:
        detail = f"{len(report['tables'])} tables"
    elif "exports" in report:
        detail = ", ".join(f"{e['segment']}: {e['rows']:,} rows" for e in report["exports"])
        if report.get("skipped_segments"):
            detail += (f"; never had a candidate, not exported: "
                       f"{', '.join(report['skipped_segments'])}")
    elif "suites" in report:
        passed = sum(s["passed"] for s in report["suites"])
        failing = sum(s["failed"] for s in report["suites"])
        detail = f"{len(report['suites'])} suites, {passed} expectations passed, {failing} failed"
    elif "sources" in report:
        detail = f"configuration valid, {len(report['sources'])} sources"
    elif "charts" in report:
        detail = f"{report['charts']} charts, {report['bytes'] / 1e6:.1f} MB"
    elif "statuses" in report:
        detail = ", ".join(f"{n} {s}" for s, n in sorted(report["statuses"].items()))
    line = f"{'✗' if failed else '✓'} {stage.replace('__', ' ')}: {detail}"
    log.log(logging.WARNING if failed else logging.INFO, "%s (%.1f s)", line,
            report.get("seconds", 0))
    # The details are for a task log; the terminal's summary prints its own table.
    for suite in report.get("suites", []):
        log.info("  %-8s %-44s %4d passed %4d failed", suite["layer"], suite["suite"],
                 suite["passed"], suite["failed"], extra={"detail": True})
    if report.get("failures"):
        from quality.gate import FailedExpectation

        for failure in report["failures"]:
            log.warning("  failed: %s", FailedExpectation(
                **{**failure, "examples": tuple(failure.get("examples") or ())}).describe(),
                extra={"detail": True})


def read_stage_reports(paths: DataPaths, run_id: str) -> dict[str, dict[str, Any]]:
    folder = paths.run_reports(run_id)
    if not folder.exists():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def registered_sources(ctx: RunContext) -> list[str]:
    """The sources to ingest, once every configuration file is valid (what ``cdp check``
    validates): a typo fails the run's first task, naming file and key, not a later one."""
    with stage_report(ctx, "check") as report:
        problems = check_settings(ctx)
        if problems:
            report["problems"] = problems
            raise InvalidConfiguration(problems)
        report["sources"] = sorted(ctx.registry.sources)
        report["as_of"] = ctx.as_of.isoformat()
    return list(report["sources"])


@contextmanager
def stage_report(ctx: RunContext, stage: str) -> Iterator[dict[str, Any]]:
    """Time a stage and write its report, also when it fails (then with the error's text).

    The caller fills the yielded dict; an ``error`` it sets before raising is kept.
    """
    report: dict[str, Any] = {}
    started = time.perf_counter()
    log.debug("stage %s started", stage.replace("__", " "))
    try:
        yield report
    except Exception as error:
        report.setdefault("error", str(error))
        report["seconds"] = round(time.perf_counter() - started, 2)
        write_stage_report(ctx, stage, report)
        raise
    report["seconds"] = round(time.perf_counter() - started, 2)
    report.update(write_stage_report(ctx, stage, report))


def ingest_source(ctx: RunContext, source: str) -> dict[str, Any]:
    """Load one registered source's landing files into raw.<source> (exactly once per file);
    records dated after the run's as-of time plus ``future_dated_tolerance_hours`` are
    quarantined (reason ``future_dated``), the report says how many and from when."""
    from datetime import timedelta

    from cdp.locking import writer_lock
    from ingest.loader import load_all

    paths = ctx.paths
    not_after = ctx.as_of + timedelta(hours=ctx.thresholds.future_dated_tolerance_hours)
    with stage_report(ctx, f"ingest__{source}") as report:
        report["source"] = source
        report["future_dated_after"] = not_after.isoformat()
        with writer_lock(paths):
            loaded = load_all(paths.build_db, ctx.registry, paths.landing, ctx.run_id,
                              sources=[source], not_after=not_after)
        for item in loaded:
            report.update(_as_dict(item))
    return report


def remove_publish_leftovers(ctx: RunContext) -> dict[str, Any]:
    """Remove temp files a killed publish or rollback left next to published.duckdb."""
    from profiles.publishing.publish import remove_leftovers

    remove_leftovers(ctx.paths.published_db)
    return {}


def withdraw_deliveries(
    ctx: RunContext, targets: list[str], *, reinstate: bool = False
) -> dict[str, Any]:
    """Withdraw (or reinstate) deliveries named ``<source>/<file or sha256>`` before ingest."""
    from cdp.locking import writer_lock
    from ingest.loader import connect
    from ingest.withdraw import reinstate as reinstate_delivery
    from ingest.withdraw import withdraw

    paths, registry = ctx.paths, ctx.registry
    stage = "reinstate" if reinstate else "withdraw"
    with stage_report(ctx, stage) as report:
        parsed = [parse_delivery_target(target, registry.sources) for target in targets]
        done: list[dict[str, Any]] = []
        with writer_lock(paths):
            con = connect(paths.build_db)
            try:
                for source, delivery in parsed:
                    spec, landing = registry[source], paths.source_landing(source)
                    if reinstate:
                        sha = reinstate_delivery(con, spec, landing, delivery)
                        done.append({"source": source, "file_sha256": sha,
                                     "status": "reinstated"})
                    else:
                        done.append(_as_dict(withdraw(con, spec, landing, delivery, ctx.run_id)))
            finally:
                con.close()
        report["deliveries"] = done
    return report


def parse_delivery_target(target: str, sources: Any) -> tuple[str, str]:
    """``"<source>/<file or sha256>"`` → (source, delivery); the source must be registered."""
    source, sep, delivery = target.partition("/")
    if not sep or not delivery:
        raise ValueError(f"delivery {target!r}: expected <source>/<file name or sha256>")
    if source not in sources:
        raise ValueError(f"delivery {target!r}: unknown source {source!r}; "
                         f"registered: {sorted(sources)}")
    return source, delivery


def train_identity(ctx: RunContext, full_refresh: bool = False) -> dict[str, Any]:
    """dbt build up to the normalised identity records, then the identity training step: the
    Splink model the links model will load, trained and saved here when ``model: auto`` finds
    none (never inside a dbt model)."""
    from cdp.dbt import dbt_build
    from cdp.locking import writer_lock
    from cdp.settings import REPO_ROOT
    from identity.training import ensure_model

    with stage_report(ctx, "train_identity") as report:
        with writer_lock(ctx.paths):
            outcome = dbt_build(ctx, part="input", full_refresh=full_refresh)
            choice = ensure_model(ctx.paths.build_db, ctx.identity, ctx.paths.models,
                                  REPO_ROOT, ctx.identity_overrides)
        report["statuses"] = dict(outcome.statuses)
        report["node_seconds"] = outcome.node_seconds
        report["model"] = choice.path.name if choice.path is not None else None
        report["model_action"] = choice.action
    return report


def retrain_identity(ctx: RunContext) -> dict[str, Any]:
    """A new version of the Splink model, estimated on the normalised identity records of the
    current raw data (dbt build up to them first) and saved next to the older versions: what
    the identity-training DAG runs. Publishes nothing; the next pipeline run links with it
    when identity.yml says ``model: auto``."""
    from cdp.dbt import dbt_build
    from cdp.locking import writer_lock
    from identity.model_store import save_versioned
    from identity.resolve import train_normalised
    from identity.training import read_normalised

    with stage_report(ctx, "retrain_identity") as report:
        with writer_lock(ctx.paths):
            outcome = dbt_build(ctx, part="input")
            records = read_normalised(ctx.paths.build_db, named_only=True)
        if records.empty:
            raise ValueError("no named identity records in raw: land files and run the "
                             "pipeline first")
        document = train_normalised(records, ctx.identity, overrides=ctx.identity_overrides)
        path = save_versioned(document, ctx.paths.models)
        report.update(statuses=dict(outcome.statuses), records=len(records), model=path.name,
                      fingerprint=document["fingerprint"]["sha256"][:16])
    return report


def build(ctx: RunContext, full_refresh: bool = False) -> dict[str, Any]:
    """The rest of the dbt build after :func:`train_identity`: identity links and profiles,
    marts, segments, and their dbt tests; then the identity report (``identity.json``)."""
    from cdp.dbt import dbt_build
    from cdp.locking import writer_lock

    with stage_report(ctx, "build") as report:
        with writer_lock(ctx.paths):
            outcome = dbt_build(ctx, part="rest", full_refresh=full_refresh)
        report["statuses"] = dict(outcome.statuses)
        slowest = sorted(outcome.node_seconds.items(), key=lambda kv: -kv[1])[:5]
        report["slowest_nodes"] = dict(slowest)
        _write_identity_report(ctx, outcome.node_seconds)
    return report


IDENTITY_NODES = ("int_identity__normalised", "int_identity__links", "int_identity__clusters")


def _write_identity_report(ctx: RunContext, node_seconds: dict[str, float]) -> None:
    """``identity.json``: counts read back from the built identity tables, the model the
    training step chose, and the identity models' seconds as dbt timed them."""
    from identity.build_stats import build_stats

    trained = read_stage_reports(ctx.paths, ctx.run_id).get("train_identity", {})
    timed = {**trained.get("node_seconds", {}), **node_seconds}
    seconds = {f"seconds_{node}": round(timed[node], 2) for node in IDENTITY_NODES
               if node in timed}
    report = {**build_stats(ctx.paths.build_db, ctx.run_id), "model": trained.get("model"),
              "model_action": trained.get("model_action"), **seconds,
              "seconds_total": round(sum(seconds.values()), 2)}
    folder = ctx.paths.run_reports(ctx.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "identity.json").write_text(json.dumps(report, indent=2))


def quality_gate(ctx: RunContext, full_refresh: bool = False) -> dict[str, Any]:
    """Great Expectations checkpoints on the build file; raises when any expectation fails.
    Raw rows the last publication's gate passed are not checked again, except on a
    ``full_refresh``."""
    from quality.gate import QualityGateFailed, run_gate

    paths = ctx.paths
    with stage_report(ctx, "quality_gate") as report:
        try:
            result = run_gate(
                paths.build_db,
                ["raw", "identity", "profiles"],
                paths.reports,
                thresholds=ctx.config.quality,
                run_id=ctx.run_id,
                previous_db=paths.published_db if paths.published_db.exists() else None,
                sources_config=ctx.config.sources,
                strong_identifiers=ctx.identity.strong_identifiers,
                recheck_raw=full_refresh,
            )
        except QualityGateFailed as failed:
            # The verdict line only: suites, failures and notes are in the report's own fields.
            report.update(passed=False, error=str(failed).splitlines()[0])
            report.update(_as_dict(failed.result))
            raise
        report["passed"] = True
        report.update(_as_dict(result))
    return report


def publish(ctx: RunContext) -> dict[str, Any]:
    """Swap the audited marts into published.duckdb atomically, with the serving store the
    API answers from (profile documents, identifier hashes, next best offers)."""
    from profiles.publishing.publish import publish as publish_file
    from profiles.serving.offers import Catalogue

    with stage_report(ctx, "publish") as report:
        publication = publish_file(ctx.paths.build_db, ctx.paths.published_db, ctx.run_id,
                                   catalogue=Catalogue(ctx.offers, ctx.activation))
        report.update(published=str(publication.path), tables=publication.tables)
    return report


def export(ctx: RunContext) -> dict[str, Any]:
    """Export every segment, through the suppression chain as of the run's clock, under
    exports/<segment>/<run_id>/; a segment the export gate refuses (e.g. its size moved more
    than ``max_segment_size_change``) fails the stage, the error naming what it found."""
    from profiles.activation.export import export_all
    from quality.gate import QualityGateFailed

    with stage_report(ctx, "export") as report:
        report["as_of"] = ctx.as_of.isoformat()
        try:
            exports, skipped = export_all(ctx.paths.published_db, ctx.paths.exports,
                                          ctx.run_id, ctx.activation,
                                          thresholds=ctx.thresholds, as_of=ctx.as_of)
        except QualityGateFailed as failed:
            report["error"] = "export gate failed: " + "; ".join(
                failure.describe() for failure in failed.result.failures)
            raise
        report["exports"] = [
            {"segment": e.manifest.segment, "rows": e.manifest.rows, "path": str(e.members_file),
             "candidates": e.manifest.candidates,
             "dropped": {s["step"]: s["dropped"] for s in e.manifest.steps},
             "files": {f.name: {"purpose": f.purpose, "rows": f.rows, "dropped": f.dropped}
                       for f in e.manifest.files}}
            for e in exports
        ]
        # segments that never had a candidate (an example over sources not fed here)
        report["skipped_segments"] = skipped
    return report


def report(ctx: RunContext) -> dict[str, Any]:
    """The controlling report of the current publication (``profiles.reporting``): one
    self-contained HTML file under ``reports/kpi/`` (``<run id>.html`` and ``latest.html``),
    from the published warehouse's KPI marts and the export manifests. The last stage of
    every publication; the export DAG writes it again once the exports are there."""
    from profiles.reporting.report import build_report

    with stage_report(ctx, "report") as report:
        written = build_report(ctx.paths.published_db, ctx.paths.reports, ctx.paths.exports)
        report.update(path=str(written.path), publication_run_id=written.run_id,
                      charts=len(written.charts), bytes=written.bytes)
    return report


def publication_clock(paths: DataPaths) -> datetime | None:
    """The as-of time of the current publication's run (the rebuild keeps it, so traits and
    segments do not move because someone was forgotten); None without one."""
    import duckdb

    from cdp.context import parse_as_of

    if not paths.published_db.exists():
        return None
    con = duckdb.connect(str(paths.published_db), read_only=True)
    try:
        row = con.execute("SELECT run_id FROM main._publication").fetchone()
    except duckdb.CatalogException:
        row = None
    finally:
        con.close()
    run_id = str(row[0]) if row else None
    check = paths.run_reports(run_id) / "check.json" if run_id else None
    if check is None or not check.exists():
        return None
    as_of = json.loads(check.read_text()).get("as_of")
    return parse_as_of(as_of) if as_of else None


def forget_person(ctx: RunContext, identifiers: list[Identifier],
                  on_step: Callable[[str], None] | None = None) -> ForgetReport:
    """Forget the person ``identifiers`` name (``privacy.forget``); the rebuild runs this
    module's train_identity, build, quality_gate, publish and report on the current
    publication's clock, under the build file's writer lock."""
    from dataclasses import replace

    from cdp.locking import writer_lock
    from privacy.forget import Erasure, forget
    from quality.gate import QualityGateFailed

    clock = publication_clock(ctx.paths)
    on_clock = replace(ctx, as_of=clock) if clock is not None else ctx

    def rebuild(run_id: str) -> bool:
        run = replace(on_clock, run_id=run_id)
        train_identity(run)
        build(run)
        try:
            quality_gate(run)
        except QualityGateFailed:
            return False
        publish(run)
        try:  # the controlling report of the new publication; the erasure never waits on it
            report(run)
        except Exception as error:  # counts only in it, and only the error's type is logged
            log.warning("controlling report not rewritten after the erasure: %s",
                        type(error).__name__)
        return True

    job = Erasure(ctx.paths, ctx.registry, lambda: writer_lock(ctx.paths), rebuild)
    return forget(job, identifiers, on_step)


def forget_requested(ctx: RunContext, requests_file: str) -> dict[str, Any]:
    """Forget the person a request file names (CSV ``kind,value``: ``privacy.identifiers``),
    then delete the file: it is the one copy of the identifiers the erasure has not taken out
    (what stays is hashed). What the DAG cdp_privacy runs."""
    from dataclasses import asdict
    from pathlib import Path

    from privacy.identifiers import read_csv

    path = Path(requests_file)
    identifiers = read_csv(path)
    with stage_report(ctx, "privacy_forget") as report:
        done = forget_person(ctx, identifiers)
        path.unlink(missing_ok=True)
        report.update(asdict(done))
    return report


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
