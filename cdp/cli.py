"""The ``cdp`` command: one typer group per area, each in ``cdp/commands/<area>.py``."""

from __future__ import annotations

import typer

from cdp.commands.airflow import airflow_app
from cdp.commands.check import check
from cdp.commands.demo import demo_app
from cdp.commands.identity import explain, identity_app
from cdp.commands.ingest import ingest_app
from cdp.commands.privacy import privacy_app
from cdp.commands.publish import publish_app
from cdp.commands.report import report
from cdp.commands.run import run
from cdp.commands.segments import segment_app
from cdp.commands.serve import serve

app = typer.Typer(help="Customer data platform: ingest, resolve identities, gate, publish, export.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(airflow_app, name="airflow")
app.add_typer(demo_app, name="demo")
app.add_typer(identity_app, name="identity")
app.add_typer(ingest_app, name="ingest")
app.add_typer(privacy_app, name="privacy")
app.add_typer(publish_app, name="publish")
app.add_typer(segment_app, name="segment")
app.command("check")(check)
app.command("report")(report)
app.command("run")(run)
app.command("serve")(serve)
app.command("explain")(explain)
