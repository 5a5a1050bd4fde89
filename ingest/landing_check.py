"""Check the landing folder against the registry without loading anything (``cdp check``).

Finds what would otherwise surface minutes into a run: a folder no source is registered for
(its files would never load), a registered source with no files, and files that lack a column
the registry maps (record key, timestamp, typed or identity columns). Problems name the file
and the column, never a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from ingest.errors import IngestError
from ingest.files import discover, fingerprint
from ingest.readers import inspect_columns
from ingest.readers.common import missing_columns
from ingest.registry import Registry


@dataclass(frozen=True)
class LandingProblem:
    """One finding: ``error`` stops a run from doing what the user meant, ``warning`` may not."""

    path: str
    problem: str
    severity: Literal["error", "warning"]


def check_landing(registry: Registry, landing: Path) -> list[LandingProblem]:
    """Every problem of ``landing`` against ``registry``, folder by folder, file by file."""
    problems: list[LandingProblem] = []
    if not landing.is_dir():
        return [LandingProblem(str(landing), "no landing folder (nothing to load)", "warning")]
    for folder in sorted(p for p in landing.iterdir() if p.is_dir()):
        if folder.name not in registry.sources and not folder.name.startswith((".", "_")):
            problems.append(LandingProblem(
                str(folder), "no source of this name is registered: its files never load "
                f"(registered: {', '.join(sorted(registry.sources))})", "error"))
    con = duckdb.connect()
    try:
        for spec in registry:
            folder = landing / spec.name
            files = discover(folder, spec.path)
            if not files:
                problems.append(LandingProblem(
                    str(folder), f"no file matches path {spec.path!r}", "warning"))
            for path in files:
                try:
                    columns = inspect_columns(
                        con, spec, fingerprint(path, folder, text=spec.format != "parquet"))
                except IngestError as error:
                    problems.append(LandingProblem(str(path), str(error), "error"))
                    continue
                missing = [] if columns.empty else missing_columns(spec, columns.names)
                if missing:
                    problems.append(LandingProblem(
                        str(path), f"missing mapped column(s) {', '.join(map(repr, missing))}",
                        "error"))
    finally:
        con.close()
    return problems
