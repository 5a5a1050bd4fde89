"""What the gate reads about a warehouse: its tables, their columns, and labelled rows.

All suites read through here, so table names, identifier quoting and the example label of a
row (the only thing a failure may show) are decided once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from core.vocabulary import quote_identifier as q

REGISTRY_TABLE = "_source_registry"
LEDGER_TABLE = "_load_ledger"
IDENTITY_GRAPH = "fct_identity_graph"
PROFILES_TABLE = "dim_profiles"
CONSENT_TABLE = "dim_profile_consent"
#: Built by the suppression work (issue 7): identifier_hash = sha256 hex of the normalised
#: email / E.164 phone. The gate checks against it whenever it exists.
SUPPRESSION_TABLE = "dim_suppression_list"

#: Catalog: (schema, table) -> (table_type, [columns]) of the warehouse's own database.
Catalog = dict[tuple[str, str], tuple[str, list[str]]]


def read_catalog(con: duckdb.DuckDBPyConnection) -> Catalog:
    """Tables, views and their columns of the connected database (not of attached ones)."""
    rows = con.execute(
        """
        SELECT c.table_schema, c.table_name, t.table_type, c.column_name
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_catalog = c.table_catalog
         AND t.table_schema = c.table_schema
         AND t.table_name = c.table_name
        WHERE c.table_catalog = current_database()
        ORDER BY c.table_schema, c.table_name, c.ordinal_position
        """
    ).fetchall()
    catalog: Catalog = {}
    for schema, table, table_type, column in rows:
        catalog.setdefault((schema, table), (table_type, []))[1].append(column)
    return catalog


def table_columns(catalog: Catalog, schema: str, table: str) -> list[str] | None:
    """The table's columns in order, or None when the table does not exist."""
    entry = catalog.get((schema, table))
    return None if entry is None else entry[1]


def label_sql(catalog: Catalog, schema: str, table: str, key_columns: list[str]) -> str:
    """SQL for a row's example label: its key, or a row locator when the key is null.

    The locator is ingest's ``_source_file`` / ``_row_number`` where the table has them
    (raw tables), else DuckDB's rowid, else the row's position.
    """
    table_type, columns = catalog[(schema, table)]
    if "_row_number" in columns and "_source_file" in columns:
        locator = (
            r"regexp_extract(CAST(_source_file AS VARCHAR), '[^/\\]+$') || ' row ' "
            "|| CAST(_row_number AS VARCHAR)"
        )
    elif "_row_number" in columns:
        locator = "'row ' || CAST(_row_number AS VARCHAR)"
    elif table_type == "BASE TABLE":
        locator = "'rowid ' || CAST(rowid AS VARCHAR)"
    else:
        locator = "'row ' || CAST(row_number() OVER () AS VARCHAR)"
    key = " || ':' || ".join(f"CAST({q(c)} AS VARCHAR)" for c in key_columns)
    null_note = " or ".join(key_columns)
    return f"coalesce({key}, {locator} || ' (null {null_note})')"


def labelled_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> pd.DataFrame:
    """``sql``'s rows, indexed by its ``_example`` column (the label GX reports)."""
    frame = con.execute(sql, list(params)).df()
    # An unnamed index: GX then lists failing rows by index label, truncated to five.
    frame.index = pd.Index(frame.pop("_example").astype(str).to_numpy())
    return frame


def read_previous(
    path: Path | None, table: str, needed: list[str], sql: str, notes: list[str]
) -> pd.DataFrame | None:
    """``sql`` on the previous publication (read-only), or None when there is none to read."""
    if path is None or not Path(path).exists():
        return None
    with duckdb.connect(str(path), read_only=True) as prev:
        columns = table_columns(read_catalog(prev), "main", table)
        if columns is None or not set(needed) <= set(columns):
            notes.append(f"previous publication has no main.{table} with {', '.join(needed)}")
            return None
        return prev.execute(sql).df()


def published_at(path: Path | None, notes: list[str]) -> dt.datetime | None:
    """When the publication at ``path`` was made (None: there is none): every raw row loaded
    before it passed that publication's gate."""
    found = read_previous(path, "_publication", ["published_at"],
                          "SELECT max(published_at) AS published_at FROM main._publication",
                          notes)
    moment = found["published_at"].iloc[0] if found is not None and len(found) else None
    return moment.to_pydatetime() if isinstance(moment, pd.Timestamp) else None


def count_rows(con: duckdb.DuckDBPyConnection, qualified: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {qualified}").fetchone()
    return int(row[0]) if row else 0


def select_list(columns: Iterable[str]) -> str:
    """Quoted column names for a SELECT list."""
    return ", ".join(q(c) for c in columns)


def sql_literal(text: str) -> str:
    """A SQL string literal (for registry values such as a date format)."""
    return "'" + text.replace("'", "''") + "'"
