"""``cdp segment``: list, dry-run (preview) and export segments from the published warehouse."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cdp.commands.options import HomeOption, fail
from cdp.context import RunContext
from core.config import ConfigError

if TYPE_CHECKING:
    from profiles.activation.config import ActivationConfig

segment_app = typer.Typer(help="Segments: preview (dry run) and export.", no_args_is_help=True)
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Segments file (default: config/segments.yml).")
]


def _setup(home: Path | None, config: Path | None) -> tuple[RunContext, ActivationConfig]:
    """The run context and the checked segment configuration (``--config`` or the
    configuration folder's segments.yml); bad input exits with code 2."""
    from profiles.activation.config import load_config
    from profiles.activation.hot_events import EVENTS_SOURCE

    ctx = RunContext.at_edge(home)
    try:
        return ctx, (load_config(config, ctx.paths.source_landing(EVENTS_SOURCE)) if config
                     else ctx.activation)
    except ConfigError as error:
        fail(error)


@segment_app.command("list")
def segment_list(home: HomeOption = None, config: ConfigOption = None) -> None:
    """Configured rule segments and published dbt segments."""
    from profiles.activation.discovery import available_segments
    from profiles.publishing.published import open_published

    ctx, activation = _setup(home, config)
    paths = ctx.paths
    try:
        with open_published(paths.published_db) as con:
            segments = available_segments(activation, con)
    except FileNotFoundError as error:
        fail(error)
    table = Table(title="Segments")
    for column in ("name", "kind", "channel", "offer / product group", "description"):
        table.add_column(column)
    for name, s in sorted(segments.items()):  # YAML text: shown as written, not as markup
        table.add_row(*map(escape, (name, s.kind, s.channel,
                                    s.offer_id or s.product_group or "", s.description)))
    Console().print(table)


@segment_app.command("preview")
def segment_preview(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    sample: Annotated[int, typer.Option(help="Profile ids shown per reason.")] = 5,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Dry run: counts before and after each suppression step, sample profile ids per reason,
    change since the last export. Writes nothing."""
    from profiles.activation.export import ExportError, preview_segment
    from profiles.activation.syntax import SegmentError
    from profiles.publishing.published import MissingTableError

    ctx, activation = _setup(home, config)
    paths = ctx.paths
    try:
        preview = preview_segment(paths.published_db, paths.exports, name, activation, sample)
    except (ExportError, SegmentError, MissingTableError, FileNotFoundError) as error:
        fail(error)
    out = Console()
    out.rule(escape(f"segment {preview.segment} ({preview.channel}), definition "
                    f"{preview.definition_hash[:12]}"))
    steps = Table(title="Suppression chain")
    for column in ("step", "before", "dropped", "after"):
        steps.add_column(column, justify="left" if column == "step" else "right")
    before = preview.candidates
    for step in preview.steps:
        steps.add_row(escape(step["step"]), f"{before:,}", f"{step['dropped']:,}",
                      f"{step['remaining']:,}")
        before = step["remaining"]
    out.print(steps)
    reasons = Table(title="Dropped, by reason (sample profile ids)")
    for column in ("step", "reason", "profiles", "sample"):
        reasons.add_column(column)
    for row in preview.reasons:
        reasons.add_row(escape(row["step"]), escape(row["reason"]), f"{row['profiles']:,}",
                        escape(", ".join(row["sample"])))
    out.print(reasons)
    if preview.change is None:
        out.print(f"members: [bold]{preview.members:,}[/] (no earlier export)")
    else:
        out.print(f"members: [bold]{preview.members:,}[/] ({preview.change:+,} since export "
                  f"{escape(str(preview.previous_run_id))})")


@segment_app.command("export")
def segment_export(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    run_id: Annotated[str | None, typer.Option(help="Run id (default: manual-<UTC time>).")]
    = None,
    home: HomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Export one segment (CSV, Parquet, hashed audiences, delta) to exports/<segment>/<run>/."""
    from profiles.activation.export import ExportError, export_segment
    from profiles.publishing.published import MissingTableError

    ctx, activation = _setup(home, config)
    paths = ctx.paths
    run = run_id or f"manual-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    try:
        export = export_segment(paths.published_db, paths.exports, name, run, activation,
                                thresholds=ctx.thresholds)
    except (ExportError, ConfigError, MissingTableError, FileNotFoundError) as error:
        fail(error)
    out = Console()
    out.print(escape(f"exported {name}: {export.manifest.rows:,} members → {export.directory}"))
    for item in export.manifest.files:
        out.print(escape(f"  {item.name}: {item.rows:,} rows"))
