"""The connection-local temp tables one file is staged in: readers fill them, the loader
appends from them and drops them before the next file."""

from __future__ import annotations

import duckdb

from core.vocabulary import quote_identifier as q

STAGE = "_ingest_stage"
REJECTS = "_ingest_rejects"
CSV_ERRORS = "_ingest_csv_errors"
CSV_SCANS = "_ingest_csv_scans"
LINES = "_ingest_lines"
NUMBERED = "_ingest_numbered"
PARSED = "_ingest_parsed"
GAPS = "_ingest_gaps"
BAD = "_ingest_bad"
ROWNUM = "_ingest_rownum"
TEMP_TABLES = (
    STAGE, REJECTS, CSV_ERRORS, CSV_SCANS, LINES, NUMBERED, PARSED, GAPS, BAD, ROWNUM
)


def drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the previous file's staging (temp tables are connection-local)."""
    for table in TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS temp.main.{q(table)}")


def count_temp(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rows in one of the staging temp tables."""
    row = con.execute(f"SELECT count(*) FROM temp.main.{q(table)}").fetchone()
    return int(row[0]) if row else 0
