"""Small real builds for mart tests: hand-written landing files, ingested and built by dbt
exactly as a run does it, read back from the build file."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb

from cdp.context import RunContext
from cdp.dbt import run_dbt
from cdp.pipeline import ingest_source, registered_sources
from core.paths import DataPaths

REPO = Path(__file__).resolve().parent.parent


def configuration_with_only(folder: Path, registry: str) -> Path:
    """The shipped configuration copied to ``folder``, its sources.yml keeping the header
    comment and holding only ``registry`` (a ``sources:`` block): a user's own sources."""
    shutil.copytree(REPO / "config", folder)
    shipped = (folder / "sources.yml").read_text()
    (folder / "sources.yml").write_text(shipped[: shipped.index("\nsources:\n") + 1] + registry)
    return folder


def write_landing_csv(path: Path, columns: tuple[str, ...], rows: list[tuple[str, ...]],
                      delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(columns)
        writer.writerows(rows)


def ingest_and_build(paths: DataPaths, run_id: str, as_of: datetime) -> None:
    """Ingest every registered source, then ``dbt build``, as run ``run_id`` on ``as_of``."""
    ctx = RunContext.at_edge(paths.home, run_id=run_id, as_of=as_of)
    for source in registered_sources(ctx):
        ingest_source(ctx, source)
    run_dbt(ctx, ["build"])


def read_build(paths: DataPaths) -> Iterator[duckdb.DuckDBPyConnection]:
    """The build file, read-only, for a module fixture to ``yield from``."""
    con = duckdb.connect(str(paths.build_db), read_only=True)
    try:
        yield con
    finally:
        con.close()
