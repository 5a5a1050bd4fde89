"""Per-format readers: one landing file -> a SQL relation the loader appends from.

One module per format (``csv``, ``jsonl``, ``parquet``); what they share (the staged-file
contract, column naming, line scans, row numbering) is in ``common``. This module picks the
reader of a source's format.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from ingest.files import Fingerprint
from ingest.readers.common import FileColumns, StagedFile
from ingest.readers.csv import inspect_csv, stage_csv
from ingest.readers.jsonl import inspect_jsonl, stage_jsonl
from ingest.readers.parquet import inspect_parquet, stage_parquet
from ingest.registry import SourceSpec

Inspector = Callable[[duckdb.DuckDBPyConnection, SourceSpec, Fingerprint], FileColumns]
Stager = Callable[[duckdb.DuckDBPyConnection, SourceSpec, Fingerprint, FileColumns], StagedFile]

INSPECTORS: dict[str, Inspector] = {
    "csv": inspect_csv, "jsonl": inspect_jsonl, "parquet": inspect_parquet,
}
STAGERS: dict[str, Stager] = {"csv": stage_csv, "jsonl": stage_jsonl, "parquet": stage_parquet}


def inspect_columns(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint
) -> FileColumns:
    """Read just enough of the file to know its columns (header, JSON keys, Parquet schema)."""
    if fp.size == 0:
        return FileColumns((), empty=True)
    return INSPECTORS[spec.format](con, spec, fp)


def stage_file(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, fp: Fingerprint, cols: FileColumns
) -> StagedFile:
    """Stage one file with the reader of its source's format.

    A column name with a NUL character is refused here, before it reaches SQL text.
    """
    if any("\x00" in name for names in cols.columns for name in names[:2]):
        raise ValueError("identifier contains a NUL character")
    return STAGERS[spec.format](con, spec, fp, cols)
