"""``cdp airflow``: the real Airflow components on one data directory, bound to loopback.

``standalone`` runs them all in one terminal; ``env`` sets a terminal up to run them apart
(scheduler, dag-processor, api-server). Both use the environment of ``cdp/airflow_env.py``:
Airflow's home in the data directory, the repository's airflow.cfg and DAGs, secrets shared
by every component, the venv's scripts first on PATH.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Annotated

import typer

from cdp.commands.options import HomeOption, console, fail, paths_for

airflow_app = typer.Typer(help="Airflow: scheduler, DAG processor and UI on this machine.",
                          no_args_is_help=True)

HostOption = Annotated[str, typer.Option(
    help="Interface the API server and UI bind to (default: loopback only).")]
PortOption = Annotated[int, typer.Option(help="TCP port of the API server and UI.")]


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@airflow_app.command("standalone")
def airflow_standalone(
    home: HomeOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
) -> None:
    """Migrate the metadata DB, run every Airflow component here (Ctrl-C stops them all).

    airflow standalone: scheduler, DAG processor, triggerer and the API server with the UI.
    """
    from cdp.airflow_env import (
        bin_dir,
        ensure_admin_password,
        ensure_metadata_db,
        write_env_file,
    )

    paths = paths_for(home)
    if not _port_is_free(host, port):
        fail(f"{host}:{port} is in use (another Airflow?): choose another with --port")
    airflow = bin_dir() / "airflow"
    if not airflow.exists():
        fail(f"{airflow} not found: install the project first (make run or pip install -e .)")
    if not any(p.is_file() for p in paths.landing.rglob("*")):
        console.print(f"[yellow]{paths.landing} is empty: `cdp demo generate` writes demo "
                      "data, or deliver files there before triggering cdp_pipeline[/]")
    env_path = write_env_file(paths, host, port)
    passwords = ensure_admin_password(paths)
    console.print(f"Airflow home: {env_path.parent} (metadata DB, logs, secrets)")
    console.print("migrating the metadata DB ...")
    ensure_metadata_db(paths, host, port)
    os.environ["CDP_HOME"] = str(paths.home)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"Airflow UI: [bold]http://{shown}:{port}[/] (ready when 'Airflow is ready' "
                  "shows): user admin, password in")
    console.print(f"  {passwords}", soft_wrap=True)
    console.print(f"Airflow commands in another terminal: . {env_path}", soft_wrap=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(airflow, [str(airflow), "standalone"])


@airflow_app.command("env")
def airflow_env(
    home: HomeOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = 8080,
) -> None:
    """Print the shell lines that set a terminal up for Airflow (also in airflow/airflow.env).

    The secrets are sourced from their file, never printed. Use: eval "$(cdp airflow env)" or
    . <home>/airflow/airflow.env, then airflow scheduler / dag-processor / api-server, one
    per terminal.
    """
    from cdp.airflow_env import env_script, write_env_file

    paths = paths_for(home)
    path = write_env_file(paths, host, port)
    sys.stdout.write(env_script(paths, host, port))
    sys.stdout.flush()
    console.print(f"# also in {path}: in each terminal run  . {path}", soft_wrap=True)
