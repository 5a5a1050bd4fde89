"""``cdp check``: validate every configuration file and the landing layout, run nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from cdp.commands.options import HomeOption, console

if TYPE_CHECKING:
    from cdp.context import RunContext

ConfigDirOption = Annotated[Path | None, typer.Option(
    "--config-dir", help="Configuration folder (default: $CDP_CONFIG or ./config).")]


def check(home: HomeOption = None, config_dir: ConfigDirOption = None) -> None:
    """Every problem of the configuration (file, key, problem) and of landing/ (file, column);
    exit code 1 if any is an error."""
    from cdp.context import RunContext, check_settings
    from ingest.landing_check import check_landing

    ctx = RunContext.at_edge(home, config_dir)
    errors = check_settings(ctx)
    warnings: list[str] = []
    if not errors:  # the landing check needs a valid registry
        for found in check_landing(ctx.registry, ctx.paths.landing):
            (errors if found.severity == "error" else warnings).append(
                f"{found.path}: {found.problem}")
        warnings.extend(_unregistered_authorities(ctx))
    for line in errors:
        console.print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
    for line in warnings:
        console.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True)
    if errors:
        raise typer.Exit(1)
    console.print(f"configuration in {ctx.config.folder} and landing files under "
                  f"{ctx.paths.landing}: no errors")


def _unregistered_authorities(ctx: RunContext) -> list[str]:
    """identity.yml ``strong_identifiers`` naming a source sources.yml does not register:
    no value has authority from it (a typo, or a source not delivered yet)."""
    registered = set(ctx.registry.sources)
    return [f"{ctx.config.identity}: identity.strong_identifiers.{field}: {source!r} is no "
            f"registered source (sources.yml): no {field} has authority from it"
            for field, sources in ctx.identity.strong_identifiers.items() if sources != "all"
            for source in sources if source not in registered]
