"""``cdp serve``: the activation API under uvicorn (reads; events in with a write key)."""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdp.commands.options import HomeOption, fail

if TYPE_CHECKING:
    from fastapi import FastAPI

    from cdp.context import RunContext


def log_config() -> dict[str, Any]:
    """uvicorn's logging plus the API's own loggers, whose access log (route template, status,
    duration) replaces uvicorn's: that one writes the raw path and query string."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["profiles.api"] = {"handlers": ["default"], "level": "INFO",
                                         "propagate": False}
    return config


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes (one per core serves the most requests; the rate limit "
        "counts per worker).")] = 1,
    home: HomeOption = None,
) -> None:
    """Serve segments, members, changes and profile lookups over HTTP (read key), and take
    real-time events (POST /events, write key from CDP_API_WRITE_KEYS)."""
    import uvicorn

    from cdp.context import RunContext
    from profiles.api.settings import ApiConfigError

    ctx = RunContext.at_edge(home)
    try:
        app = _app(ctx)  # checked here, so a bad file stops the command, not a worker
    except ApiConfigError as error:
        fail(error)
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "info",
                               "access_log": False, "log_config": log_config()}
    if workers == 1:
        uvicorn.run(app, **options)
        return
    # uvicorn starts each worker from an import string: the data directory and configuration
    # resolved here reach them through the environment the workers inherit
    os.environ["CDP_HOME"], os.environ["CDP_CONFIG"] = str(ctx.paths.home), str(ctx.config.folder)
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **options)


def worker_app() -> FastAPI:
    """The app of one worker process of ``cdp serve --workers N``."""
    from cdp.context import RunContext

    return _app(RunContext.at_edge(None))


def _app(ctx: RunContext) -> FastAPI:
    from profiles.api.app import create_app
    from profiles.api.settings import API_KEYS_ENV, API_WRITE_KEYS_ENV

    return create_app(ctx.paths, ctx.config.api, ctx.config.segments,
                      os.environ.get(API_KEYS_ENV, "").split(","),
                      os.environ.get(API_WRITE_KEYS_ENV, "").split(","),
                      offers_config=ctx.config.offers)
