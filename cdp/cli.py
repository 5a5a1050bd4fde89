"""The ``cdp`` command: one typer group per area, each in ``cdp/commands/<area>.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cdp.commands.check import check
from cdp.commands.demo import demo_app
from cdp.commands.identity import explain, train
from cdp.commands.ingest import ingest_app
from cdp.commands.options import HomeOption, fail, paths_for
from cdp.commands.publish import publish_app
from cdp.commands.run import run
from cdp.commands.segments import segment_app
from cdp.commands.serve import serve

app = typer.Typer(help="Customer data platform: ingest, resolve identities, gate, publish, export.",
                  no_args_is_help=True, add_completion=False)
identity_app = typer.Typer(help="Identity resolution.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(identity_app, name="identity")
app.add_typer(ingest_app, name="ingest")
app.add_typer(publish_app, name="publish")
app.add_typer(segment_app, name="segment")
app.command("check")(check)
app.command("run")(run)
app.command("serve")(serve)
app.command("explain")(explain)
identity_app.command("train")(train)


@identity_app.command("evaluate")
def identity_evaluate(
    truth: Annotated[Path, typer.Option(help="CSV with columns source,record_id,person_id.")],
    home: HomeOption = None,
) -> None:
    """Pairwise precision, recall and F1 of the published identity graph against a truth file."""
    from cdp.run import evaluate_published

    paths = paths_for(home)
    if not truth.exists():
        fail(f"truth file {truth} does not exist")
    if not paths.published_db.exists():
        fail(f"no published warehouse at {paths.published_db}")
    metrics = evaluate_published(paths.published_db, truth)
    table = Table(title="Identity resolution vs ground truth")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
    Console().print(table)
