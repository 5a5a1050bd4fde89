"""``cdp ingest``: take a delivery back (withdraw) or let withdrawn bytes load again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cdp.commands.options import HomeOption, console, fail

ingest_app = typer.Typer(help="Landing deliveries: withdraw or reinstate.", no_args_is_help=True)
SourceArgument = Annotated[str, typer.Argument(help="Registered source, e.g. shop_accounts.")]
DeliveryArgument = Annotated[
    str, typer.Argument(help="File name under landing/<source>/, or the delivery's sha256.")
]


def _run(source: str, delivery: str, home: Path | None, *, reinstate: bool) -> None:
    from cdp.context import RunContext
    from cdp.pipeline import withdraw_deliveries

    ctx = RunContext.at_edge(home, run_id=f"manual__{datetime.now(UTC):%Y%m%dT%H%M%S}")
    try:
        report = withdraw_deliveries(ctx, [f"{source}/{delivery}"], reinstate=reinstate)
    except Exception as error:  # noqa: BLE001 - every failure is reported the same way
        fail(error)
    for item in report["deliveries"]:
        console.print(escape(
            ", ".join(f"{key}: {value}" for key, value in item.items() if value not in (None, ""))
        ))


@ingest_app.command("withdraw")
def withdraw(source: SourceArgument, delivery: DeliveryArgument, home: HomeOption = None) -> None:
    """Remove one delivery's rows from raw and its quarantine; its bytes stay refused.

    The next run publishes if everything else passes. Waits for a running writer.
    """
    _run(source, delivery, home, reinstate=False)


@ingest_app.command("reinstate")
def reinstate(source: SourceArgument, delivery: DeliveryArgument, home: HomeOption = None) -> None:
    """Undo a withdrawal: the file loads again on the next run if it is still in landing."""
    _run(source, delivery, home, reinstate=True)
