"""Read-only access to the published warehouse, shared by exports, previews and the API.

The published file is attached read-only to an in-memory DuckDB database: marts are read as
``pub.main.<table>``, while working tables (candidates, suppression drops, API caches) live in
the in-memory catalog, so nothing can ever be written into the publication.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

PUBLISHED = "pub"
"""Catalog name the published file is attached under."""


class MissingTableError(RuntimeError):
    """A mart the activation layer needs is not in the published file (yet)."""


def open_published(published_db: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the published file attached read-only as ``pub``."""
    if not published_db.exists():
        raise FileNotFoundError(f"no published warehouse at {published_db}: run the pipeline")
    con = duckdb.connect()
    con.execute(f"ATTACH ? AS {PUBLISHED} (READ_ONLY)", [str(published_db)])
    return con


def published_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """``schema.table`` names in the published file."""
    rows = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = ?",
        [PUBLISHED],
    ).fetchall()
    return {row[0] for row in rows}


def require_tables(con: duckdb.DuckDBPyConnection, tables: set[str], purpose: str) -> None:
    """Fail early, naming every missing table, instead of with a binder error mid-export."""
    missing = sorted(tables - published_tables(con))
    if missing:
        raise MissingTableError(
            f"{purpose} needs {', '.join(missing)}, missing from the published warehouse "
            "(build the marts and publish again)"
        )


def run_id_of(published_db: Path) -> str | None:
    """The run that produced the publication file ``published_db``, if it says."""
    con = open_published(published_db)
    try:
        return publication_run_id(con)
    finally:
        con.close()


def publication_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The pipeline run that produced the attached publication, if it says."""
    if "main._publication" not in published_tables(con):
        return None
    row = con.execute(f"SELECT run_id FROM {PUBLISHED}.main._publication").fetchone()
    return str(row[0]) if row else None
