"""``cdp serve``: the read-only activation API under uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

HomeOption = Annotated[
    Path | None, typer.Option("--home", help="Data directory (default: $CDP_HOME or ./data).")
]


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    home: HomeOption = None,
) -> None:
    """Serve segments, members, changes and profile lookups over HTTP (read-only, API key)."""
    import uvicorn
    from profiles.api import ApiConfigError, create_app

    from cdp.settings import data_paths

    try:
        app = create_app(data_paths(home))
    except ApiConfigError as error:
        Console(stderr=True).print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    uvicorn.run(app, host=host, port=port, log_level="info")
