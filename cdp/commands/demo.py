"""``cdp demo``: realistic landing files for every demo source plus their ground truth."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cdp.commands.options import HomeOption, NoiseOption, console, fail, paths_for

demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)


@demo_app.command("generate")
def demo_generate(
    people: Annotated[int, typer.Option(help="Number of people.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 42,
    noise: NoiseOption = "default",
    home: HomeOption = None,
) -> None:
    """Write realistic landing files for every demo source plus the ground truth."""
    from cdp.demo.generator import generate

    paths = paths_for(home)
    try:
        report = generate(paths, people=people, seed=seed, noise=noise)
    except ValueError as error:
        fail(error)
    table = Table(title=f"Demo data ({people:,} people, seed {seed}, noise {noise})")
    table.add_column("source")
    table.add_column("records", justify="right")
    for source, count in sorted(report.records.items()):
        table.add_row(source, f"{count:,}")
    console.print(table)
    console.print(f"landing files under {paths.landing}, ground truth under {paths.truth}")
