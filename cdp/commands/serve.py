"""``cdp serve``: the activation API under uvicorn (reads; events in with a write key)."""

from __future__ import annotations

import copy
import os
from typing import Annotated, Any

import typer

from cdp.commands.options import HomeOption, fail


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
    home: HomeOption = None,
) -> None:
    """Serve segments, members, changes and profile lookups over HTTP (read key), and take
    real-time events (POST /events, write key from CDP_API_WRITE_KEYS)."""
    import uvicorn

    from cdp.context import RunContext
    from profiles.api.app import create_app
    from profiles.api.settings import API_KEYS_ENV, API_WRITE_KEYS_ENV, ApiConfigError

    ctx = RunContext.at_edge(home)
    try:
        app = create_app(ctx.paths, ctx.config.api, ctx.config.segments,
                         os.environ.get(API_KEYS_ENV, "").split(","),
                         os.environ.get(API_WRITE_KEYS_ENV, "").split(","),
                         offers_config=ctx.config.offers)
    except ApiConfigError as error:
        fail(error)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                log_config=log_config())
