"""A run's progress on the terminal, from the log records the pipeline writes anyway.

The stages and the dbt runner log what they do (``cdp.pipeline``: a line per finished stage,
``cdp.dbt``: a line per dbt node); in a task log those are plain lines. ``cdp run`` shows the
finished stages as lines and the stage and dbt node running now on a live status line, while
Airflow's own logging stays quiet unless ``--debug``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.status import Status

#: The loggers whose records make up a run's progress.
PROGRESS_LOGGER = "cdp"


class _ProgressHandler(logging.Handler):
    def __init__(self, console: Console, status: Status) -> None:
        super().__init__(logging.DEBUG)
        self.console, self.status = console, status
        self.stage = "starting"

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "detail", False):  # the summary shows these
            return
        message = record.getMessage()
        if record.name == "cdp.pipeline" and message.startswith("stage "):
            self.stage = message.removeprefix("stage ").removesuffix(" started")
            self.status.update(f"{escape(self.stage)} …")
        elif record.name == "cdp.dbt":
            if record.levelno >= logging.WARNING:
                self.console.print(f"  [red]{escape(message)}[/]")
            elif record.levelno == logging.DEBUG:  # a node started
                node = message.removeprefix("dbt ").removesuffix(" started")
                self.status.update(f"{escape(self.stage)}: dbt {escape(node)}")
        elif record.levelno >= logging.INFO:
            colour = "red" if record.levelno >= logging.WARNING else "green"
            first, _, rest = message.partition(" ")
            mark = f"[{colour}]{escape(first)}[/] " if first in {"✓", "✗"} else ""
            self.console.print(mark + escape(rest if mark else message), highlight=False)


@contextmanager
def run_progress(console: Console) -> Iterator[None]:
    """Show the progress of whatever runs inside on ``console`` (transient status line)."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    with console.status("starting …") as status:
        handler = _ProgressHandler(console, status)
        previous = (logger.level, logger.propagate)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(previous[0])
            logger.propagate = previous[1]
