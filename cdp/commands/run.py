"""``cdp run``: the whole pipeline once, in-process, and the summary of what came out."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cdp.commands.demo import demo_generate
from cdp.commands.options import HomeOption, NoiseOption, console, fail, paths_for
from cdp.commands.progress import run_progress
from core.paths import DataPaths


def _landing_is_empty(paths: DataPaths) -> bool:
    return not any(p.is_file() for p in paths.landing.rglob("*"))


def run(
    home: HomeOption = None,
    people: Annotated[int, typer.Option(help="People in generated demo data.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed for generated demo data.")] = 42,
    noise: NoiseOption = "default",
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The run's clock, ISO 8601 (2026-11-01T00:00, UTC unless an offset is "
        "given): traits, suppression windows and future-dated records are judged against it. "
        "Default: the time the run starts; on generated demo data the generator's reference "
        "date.")] = None,
    full_refresh: Annotated[bool, typer.Option(
        "--full-refresh", help="Rebuild incremental models and the identity state "
        "(normalised records, Splink scores) from raw instead of updating them with what "
        "changed; gives the same result, slower.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show Airflow's own log and tracebacks of failed tasks.")] = False,
) -> None:
    """Run cdp_pipeline once in-process (dag.test); generate demo data if landing/ is empty."""
    from cdp.context import parse_as_of
    from cdp.run import demo_as_of, run_pipeline

    try:
        clock = parse_as_of(as_of) if as_of is not None else None
    except ValueError as error:
        fail(error)
    paths = paths_for(home)
    if _landing_is_empty(paths):
        console.print(f"landing/ is empty: generating demo data ({people:,} people)")
        demo_generate(people=people, seed=seed, noise=noise, home=paths.home)
    if clock is None and (clock := demo_as_of(paths)) is not None:
        console.print(f"generated demo data: as of its reference date {clock:%Y-%m-%d %H:%M} "
                      "UTC (--as-of to change)")
    _check_configuration(paths)
    # The terminal is for the run's own progress; Airflow's logging (task tracebacks, its
    # scheduling chatter) stays out of it unless --debug: the summary names what failed.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "DEBUG" if debug else "CRITICAL")
    with run_progress(console):
        summary = run_pipeline(paths, as_of=clock, full_refresh=full_refresh)
    print_summary(summary)
    if not summary.succeeded:
        raise typer.Exit(1)


def _check_configuration(paths: DataPaths) -> None:
    """Every configuration problem up front, as one message (file, key, problem), before
    Airflow is even imported: a typo costs seconds, not a failed run."""
    from cdp.context import RunContext, check_settings

    problems = check_settings(RunContext.at_edge(paths.home))
    if problems:
        fail("invalid configuration:\n" + "\n".join(problems))


def stage_order(stage: str) -> int:
    from cdp.run import STAGES

    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def print_summary(summary: object) -> None:
    from cdp.run import RunSummary

    assert isinstance(summary, RunSummary)
    out = Console()
    colour = "green" if summary.succeeded else "red"
    out.rule(f"cdp_pipeline run {summary.run_id}: [{colour}]{summary.state}[/]")
    if summary.as_of:
        out.print(f"as of: {summary.as_of}")
    if summary.records_per_source:
        table = Table(title="Records per source")
        table.add_column("source")
        table.add_column("loaded", justify="right")
        table.add_column("quarantined", justify="right")
        for source, count in sorted(summary.records_per_source.items()):
            table.add_row(source, f"{count:,}", f"{summary.rejected_per_source.get(source, 0):,}")
        out.print(table)
        for source, future in sorted(summary.future_dated_per_source.items()):
            if future:
                out.print(f"[yellow]{source}: {future:,} record(s) dated after "
                          f"{summary.future_dated_after} quarantined (reason future_dated, "
                          f"raw.{source}__rejected)[/]")
    if summary.profiles is not None:
        out.print(f"profiles: [bold]{summary.profiles:,}[/]")
    if summary.identity_touched:
        t = summary.identity_touched
        out.print(
            "identity touched: {records_normalised:,} of {records:,} records normalised, "
            "{person_nodes_scored:,} of {person_nodes:,} person nodes scored, "
            "{splink_pairs_scored:,} new Splink pairs (the rest from the identity state)"
            .format(**t))
    if summary.identity:
        m = summary.identity
        out.print(
            "identity vs ground truth: precision {precision:.4f}  recall {recall:.4f}  "
            "F1 [bold]{f1:.4f}[/]".format(**m)
        )
    if summary.quality:
        _print_quality(out, summary.quality)
    if summary.published:
        out.print(f"published: {summary.published}")
    for export in summary.exports:
        out.print(f"export: {export['segment']} ({export['rows']:,} rows) → {export['path']}")
    for task_id, state in summary.failed_tasks.items():
        out.print(f"[red]task {escape(f'{task_id}: {state}')}[/]")
    for stage, error in summary.errors.items():
        out.print(f"{stage}: {error}", markup=False, style="red")
    if not summary.succeeded and summary.published is None:
        out.print(
            "[red]nothing was published by this run; the previous publication is unchanged[/]"
        )
    elif not summary.succeeded:
        out.print("[red]the warehouse was published, but a later stage failed[/]")
    times = Table(title="Seconds per stage")
    times.add_column("stage")
    times.add_column("seconds", justify="right")
    for stage in sorted(summary.stage_seconds, key=stage_order):
        label = "  of which identity" if stage == "identity" else stage
        times.add_row(label, f"{summary.stage_seconds[stage]:.1f}")
    times.add_row("total (dag.test)", f"{summary.seconds:.1f}")
    out.print(times)


def _print_quality(out: Console, report: dict[str, Any]) -> None:
    """Every suite with its counts, then each failure: expectation, observed value, keys."""
    from rich.markup import escape

    from quality.gate import FailedExpectation

    suites = report.get("suites", [])
    passed = sum(s["passed"] for s in suites)
    failed = sum(s["failed"] for s in suites)
    verdict = "passed" if report.get("passed") else "[red]FAILED[/]"
    out.print(
        f"quality gate: {verdict} ({len(suites)} suites, {passed} expectations passed, "
        f"{failed} failed, {report.get('seconds', 0):.1f} s)"
    )
    table = Table(show_header=True, box=None, padding=(0, 2))
    for column in ("layer", "suite", "passed", "failed"):
        table.add_column(column, justify="right" if column in ("passed", "failed") else "left")
    for s in suites:
        style = "red" if s["failed"] else None
        table.add_row(s["layer"], s["suite"], str(s["passed"]), str(s["failed"]), style=style)
    out.print(table)
    for key, colour in (("failures", "red"), ("warnings", "yellow")):
        for item in report.get(key, []):
            described = FailedExpectation(**{**item, "examples": tuple(item["examples"])})
            out.print(f"  [{colour}]{key[:-1]}: {escape(described.describe())}[/]", soft_wrap=True)
    if report.get("error") and not report.get("failures"):
        out.print(f"  [red]{escape(report['error'])}[/]")
    for note in report.get("notes", []):
        out.print(f"  [dim]note: {escape(note)}[/]", soft_wrap=True)
    if report.get("data_docs_index"):
        out.print(f"  Data Docs: {report['data_docs_index']}")
