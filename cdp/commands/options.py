"""Options and error output every command group shares (one definition each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from cdp.settings import data_paths
from core.paths import DataPaths

HomeOption = Annotated[
    Path | None, typer.Option("--home", help="Data directory (default: $CDP_HOME or ./data).")
]
NoiseOption = Annotated[str, typer.Option(help="Noise level: low, default or hard.")]

#: Progress and errors go to stderr, results to stdout.
console = Console(stderr=True)


def paths_for(home: Path | None) -> DataPaths:
    """The data directory of this invocation, created if missing."""
    return data_paths(home).ensure()


def fail(message: object) -> NoReturn:
    """Exit with code 2 and the message verbatim: rich would take "[a-z]" in it for markup, and
    wrap it at the terminal's width inside a path (soft wrap: one line, copyable)."""
    console.print(f"[red]error:[/] {escape(str(message))}", soft_wrap=True)
    raise typer.Exit(2) from None
