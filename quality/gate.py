"""The quality gate: validate a built warehouse layer by layer and refuse to publish on failure.

Called from an Airflow task (plain Python, no GX operator) and from the CLI::

    result = run_gate(paths.build_db, ["raw", "identity", "profiles"], paths.reports,
                      ctx.thresholds, run_id, sources_config=ctx.config.sources,
                      strong_identifiers=ctx.identity.strong_identifiers)

Design choices and why:

* The warehouse file is opened **read-only** and closed before GX starts: the gate never
  holds a write lock, so the next writer can open the file as soon as it returns.
* An **ephemeral** GX context per run keeps GX state out of the repository and makes
  re-runs (twice in one process, or concurrently) independent; suites, validation
  definitions and checkpoints of the same name are simply replaced. Validation results are
  kept as JSON under ``reports_dir/gx/validations`` so the Data Docs under
  ``reports_dir/data_docs`` show the history of gate runs (the last ``KEPT_RUNS``).
* Failure reports carry **example record keys only** (record keys, ``source:record_id``,
  profile ids): GX runs with ``exclude_unexpected_values`` so emails, names and other
  column values never reach results, messages, logs or Data Docs.
* An expectation of GX severity ``warning`` (the export size change, by default) is
  reported in ``GateResult.warnings`` and the task log but never fails the gate: alarms
  that a person should look at, without stopping activation.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from quality.thresholds import Thresholds, load_thresholds

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )
    from great_expectations.data_context import AbstractDataContext

    from quality.suites.checks import CheckSpec, LayerPlan

log = logging.getLogger(__name__)

DOCS_SITE = "cdp_quality_gate"
MAX_EXAMPLES = 5
#: Data Docs index lists at most this many validation results (newest first).
DOCS_HISTORY_LIMIT = 500
#: Runs whose validation results and Data Docs pages are kept (gate and export validations
#: alike): a CDP runs every day for years and each run adds a result per check, which the
#: docs index reads back every run.
KEPT_RUNS = 90
#: GX's folder for one validation's run time (``20261206T205350.477098Z``).
_RUN_TIME = re.compile(r"^\d{8}T\d{6}\.\d+Z$")

# GX keeps process-global state (the "current" context); runs in threads take turns.
_GX_LOCK = threading.Lock()

_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": MAX_EXAMPLES,
    "exclude_unexpected_values": True,  # never copy failing values (PII) into results
    "return_unexpected_index_query": False,
}


@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation, described without any column value but example keys."""

    layer: str
    suite: str
    table: str
    expectation_type: str
    column: str | None
    observed: str
    examples: tuple[str, ...] = ()
    #: what the observed value was judged against (a previous publication's figure, ...)
    context: str | None = None
    #: the file and key that decide this limit (``quality.yml max_cluster_size``): what a
    #: user changes to accept the data
    setting: str | None = None

    def describe(self) -> str:
        on = f" on column {self.column}" if self.column else ""
        text = (
            f"[{self.layer}] {self.suite} ({self.table}): {self.expectation_type}{on}; "
            f"observed {self.observed}"
        )
        if self.context:
            text += f"; {self.context}"
        if self.setting:
            text += f" (setting: {self.setting})"
        if self.examples:
            text += f"; example keys: {', '.join(self.examples)}"
        return text


@dataclass(frozen=True)
class SuiteOutcome:
    """Passed / failed expectation counts of one suite (one table or derived check)."""

    layer: str
    suite: str
    table: str
    passed: int
    failed: int

    @property
    def success(self) -> bool:
        return self.failed == 0


@dataclass
class GateResult:
    """What the gate found; ``success`` is False iff any expectation failed."""

    run_id: str
    layers: tuple[str, ...]
    suites: list[SuiteOutcome] = field(default_factory=list)
    failures: list[FailedExpectation] = field(default_factory=list)
    #: failed expectations of severity "warning": reported, never blocking
    warnings: list[FailedExpectation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data_docs_index: Path | None = None
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        return not self.failures

    @property
    def passed(self) -> int:
        return sum(s.passed for s in self.suites)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.suites)

    def by_layer(self) -> dict[str, tuple[int, int]]:
        """layer -> (passed, failed) expectation counts."""
        counts: dict[str, tuple[int, int]] = {layer: (0, 0) for layer in self.layers}
        for s in self.suites:
            passed, failed = counts.get(s.layer, (0, 0))
            counts[s.layer] = (passed + s.passed, failed + s.failed)
        return counts

    def summary(self) -> str:
        """Human-readable report: counts per suite, failures, notes, Data Docs location."""
        status = "passed" if self.success else "FAILED"
        lines = [
            f"Quality gate {status} (run '{self.run_id}', layers {', '.join(self.layers)}): "
            f"{self.failed} of {self.passed + self.failed} expectations failed "
            f"in {self.seconds:.1f}s."
        ]
        lines += [
            f"  {'ok  ' if s.success else 'FAIL'} {s.suite}: {s.passed} passed, {s.failed} failed"
            for s in self.suites
        ]
        lines += [f"- {f.describe()}" for f in self.failures]
        lines += [f"warning: {w.describe()}" for w in self.warnings]
        lines += [f"note: {n}" for n in self.notes]
        if self.data_docs_index is not None:
            lines.append(f"Data Docs: {self.data_docs_index}")
        return "\n".join(lines)


class QualityGateFailed(RuntimeError):
    """Raised when any expectation failed; ``result`` holds the full GateResult."""

    def __init__(self, result: GateResult) -> None:
        self.result = result
        super().__init__(result.summary())


def run_gate(
    db_path: Path,
    layers: Sequence[str],
    reports_dir: Path,
    thresholds: Thresholds | str | Path,
    run_id: str = "manual",
    *,
    sources_config: Path,
    previous_db: Path | None = None,
    strong_identifiers: Mapping[str, Sequence[str] | str] | None = None,
    recheck_raw: bool = False,
) -> GateResult:
    """Validate ``layers`` of the DuckDB file at ``db_path``; raise QualityGateFailed on failure.

    ``thresholds`` is a Thresholds object or the path of its YAML file (the caller's
    ``config/quality.yml``). ``sources_config`` is the ``sources.yml`` used for identity
    columns the warehouse's registry table does not name (absent: none). ``previous_db``
    (the last published file) enables the comparisons with the previous publication:
    singleton share and profile id changes (identity), row drop (profiles); without it the
    run is a first publication and what it observes is the calibration.
    ``strong_identifiers``: per strong identifier the sources with authority over it (the
    identity configuration's ``strong_identifiers``; ``all``: every source), each checked
    for at most one value per profile; None: customer numbers of every source.
    ``recheck_raw``: check every raw row again, also those loaded before the previous
    publication (whose gate passed them; raw is append-only, so they cannot have changed).
    """
    started = time.perf_counter()
    if not isinstance(thresholds, Thresholds):
        thresholds = load_thresholds(thresholds)
    if not layers:
        raise ValueError("run_gate needs at least one layer")
    db_path = Path(db_path)
    if not db_path.is_file():
        raise FileNotFoundError(f"warehouse file not found: {db_path}")

    from quality.suites import plan_layers  # imports Great Expectations (slow)

    # Everything is read here; the connection is closed before GX runs.
    with _connect_read_only(db_path) as con:
        plans = plan_layers(
            con,
            layers,
            thresholds,
            sources_config=Path(sources_config),
            previous_db=Path(previous_db) if previous_db is not None else None,
            strong_identifiers=strong_identifiers,
            recheck_raw=recheck_raw,
        )
    return validate_plans(plans, Path(reports_dir), run_id, started)


def validate_plans(
    plans: Sequence[LayerPlan], reports_dir: Path, run_id: str, started: float
) -> GateResult:
    """Run the planned checks as GX checkpoints, log the verdict, raise QualityGateFailed.

    Shared by the warehouse gate and export validation (``quality.exports``) so both report,
    log and fail the same way. ``started`` is the ``time.perf_counter()`` of the caller's
    start, so the reported seconds include reading the data.
    """
    result = GateResult(run_id=run_id, layers=tuple(plan.layer for plan in plans))
    for plan in plans:
        result.notes.extend(plan.notes)
    with _GX_LOCK:
        _validate(plans, reports_dir, run_id, result)
    result.seconds = time.perf_counter() - started

    log.info(
        "quality gate run %s (%s): %d passed, %d failed in %.1fs",
        run_id,
        ", ".join(result.layers),
        result.passed,
        result.failed,
        result.seconds,
    )
    for warning in result.warnings:
        log.warning("quality gate warning: %s", warning.describe())
    if not result.success:
        for failure in result.failures:
            log.error("quality gate failure: %s", failure.describe())
        raise QualityGateFailed(result)
    return result


def _connect_read_only(db_path: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only, so the gate never takes or holds the write lock.

    DuckDB refuses a read-only connection when *this* process already holds the file
    read-write (e.g. ``dag.test()`` running build and gate in one process). Then the
    existing database instance is joined instead: no new lock is taken, and the gate
    only ever runs SELECTs.
    """
    try:
        return duckdb.connect(str(db_path), read_only=True)
    except duckdb.ConnectionException as exc:
        if "different configuration" not in str(exc):
            raise
        log.warning("warehouse already open read-write in this process; reusing that instance")
        return duckdb.connect(str(db_path))


def _validate(
    plans: Sequence[LayerPlan], reports_dir: Path, run_id: str, result: GateResult
) -> None:
    """Run one Checkpoint per check and build Data Docs; fills ``result``.

    One Checkpoint per check rather than per layer because a Checkpoint passes the same
    batch parameters to all its validation definitions, and each check has its own
    DataFrame.
    """
    from quality.gx import ExpectationSuiteIdentifier, RunIdentifier, gx

    reports_dir = reports_dir.resolve()
    context = _ephemeral_context(reports_dir)
    datasource = context.data_sources.add_or_update_pandas(name="warehouse")
    # Result and docs paths are built from the run name: no path separators in it.
    run_name = run_id.replace("/", "_").replace("\\", "_")
    run = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
    docs_resources: list[Any] = []

    for plan in plans:
        for spec in plan.checks:
            asset = datasource.add_dataframe_asset(name=spec.name)
            batch_definition = asset.add_batch_definition_whole_dataframe("whole_table")
            suite = context.suites.add_or_update(spec.build_suite())
            definition = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=spec.name, data=batch_definition, suite=suite)
            )
            checkpoint = context.checkpoints.add_or_update(
                gx.Checkpoint(
                    name=f"gate.{spec.name}",
                    validation_definitions=[definition],
                    result_format=_RESULT_FORMAT,
                    actions=[],
                )
            )
            outcome = checkpoint.run(batch_parameters={"dataframe": spec.frame}, run_id=run)
            docs_resources.append(ExpectationSuiteIdentifier(name=spec.name))
            for key, validation in outcome.run_results.items():
                docs_resources.append(key)
                _collect(spec, validation.results, result)

    pruned = prune_history(reports_dir)
    if pruned:
        log.info("quality gate: validation results of %d older runs removed", pruned)
    try:
        context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=docs_resources)
        index = reports_dir / "data_docs" / "index.html"
        result.data_docs_index = index if index.exists() else None
    except Exception as exc:  # docs are a report; never let them hide the gate's verdict
        log.warning("building Data Docs failed: %s", type(exc).__name__)
        result.notes.append(f"Data Docs not built: {type(exc).__name__}")


def prune_history(reports_dir: Path, keep: int = KEPT_RUNS) -> int:
    """Remove the validation results and Data Docs pages of all but the ``keep`` newest runs
    (by their newest validation time); returns how many runs were removed."""
    roots = [reports_dir / "gx" / "validations", reports_dir / "data_docs" / "validations"]
    folders: dict[str, list[Path]] = {}
    newest: dict[str, str] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for folder in root.rglob("*"):
            times = [child.name for child in folder.iterdir()] if folder.is_dir() else []
            if not times or not all(_RUN_TIME.match(name) for name in times):
                continue
            folders.setdefault(folder.name, []).append(folder)
            newest[folder.name] = max(newest.get(folder.name, ""), *times)
    ranked = sorted(newest, key=lambda run: newest[run], reverse=True)
    for run in ranked[keep:]:
        for folder in folders[run]:
            shutil.rmtree(folder, ignore_errors=True)
    return max(len(ranked) - keep, 0)


def _ephemeral_context(reports_dir: Path) -> AbstractDataContext:
    """In-memory GX context; validation results and Data Docs go to ``reports_dir``."""
    from quality.gx import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
        gx,
    )

    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    stores = dict(defaults.stores)
    stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(reports_dir / "gx" / "validations"),
        },
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(reports_dir / "data_docs"),
                },
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": DOCS_HISTORY_LIMIT,
                },
            }
        },
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _collect(spec: CheckSpec, results: list[ExpectationValidationResult], out: GateResult) -> None:
    """Count and describe results; a failed expectation of severity "warning" only warns."""
    from quality.gx import FailureSeverity
    from quality.suites.checks import CONTEXT_META, SETTING_META

    passed = failed = 0
    for item in results:
        config = item.expectation_config
        warning = config is not None and config.severity == FailureSeverity.WARNING
        if item.success or warning:
            passed += 1
        else:
            failed += 1
        if item.success:
            continue
        kwargs = dict(config.kwargs) if config is not None else {}
        meta = dict(config.meta or {}) if config is not None else {}
        expectation_type = config.type if config is not None else "unknown"
        column = kwargs.get("column") or ", ".join(kwargs.get("column_list") or []) or None
        (out.warnings if warning else out.failures).append(
            FailedExpectation(
                layer=spec.layer,
                suite=spec.name,
                table=spec.table,
                expectation_type=expectation_type,
                column=column,
                observed=_observed(item, kwargs),
                examples=_examples(spec, expectation_type, kwargs, item.result or {}),
                context=meta.get(CONTEXT_META),
                setting=meta.get(SETTING_META),
            )
        )
    out.suites.append(SuiteOutcome(spec.layer, spec.name, spec.table, passed, failed))


def _observed(item: ExpectationValidationResult, kwargs: dict[str, Any]) -> str:
    """The observed value as text: an aggregate, or a count of unexpected rows."""
    error = _exception_message(item.exception_info)
    if error:
        return f"error: {error}"
    result = item.result or {}
    if result.get("observed_value") is not None:
        return _format_value(result["observed_value"]) + _bounds(kwargs)
    if result.get("unexpected_count") is not None:
        count = result["unexpected_count"]
        total = result.get("element_count") or 0
        percent = result.get("unexpected_percent") or 0.0
        if result.get("missing_count"):  # GX's percent is of the non-null values then
            text = f"{count} of {total - result['missing_count']} non-null values unexpected"
        else:
            text = f"{count} of {total} rows unexpected"
        text += f" ({percent:.2f}%)"
        mostly = kwargs.get("mostly")
        if mostly is not None and mostly < 1:
            text += f", at most {(1 - mostly) * 100:.2f}% allowed"
        return text
    return "no value (empty input)"


def _bounds(kwargs: dict[str, Any]) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is None and high is None:
        return ""
    return (
        f" (allowed {_format_value(low) if low is not None else '-inf'}"
        f"..{_format_value(high) if high is not None else 'inf'})"
    )


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _exception_message(info: Any) -> str | None:
    """First line of a GX exception message, if the expectation raised (shape varies)."""
    if not isinstance(info, dict):
        return None
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            message = str(entry.get("exception_message") or "exception").splitlines()[0]
            return message[:200]
    return None


def _examples(
    spec: CheckSpec, expectation_type: str, kwargs: dict[str, Any], result: dict[str, Any]
) -> tuple[str, ...]:
    """Up to five example keys: GX's failing row labels, or the rows behind an aggregate."""
    labels: list[Any] = list(result.get("partial_unexpected_index_list") or [])
    column = kwargs.get("column")
    if not labels and column in spec.preset_examples:
        labels = list(spec.preset_examples[column])
    if (
        not labels
        and expectation_type == "expect_column_max_to_be_between"
        and kwargs.get("max_value") is not None
        and column in spec.frame.columns
    ):
        values = spec.frame[column]
        over = values[values > kwargs["max_value"]].sort_values(ascending=False)
        labels = list(over.index[: MAX_EXAMPLES * 2])
    unique: list[str] = []
    for label in labels:
        text = str(label)
        if text not in unique:
            unique.append(text)
    return tuple(unique[:MAX_EXAMPLES])
