"""Warehouse-side bookkeeping: the ``raw`` schema, per-source tables, load ledger, registry.

Why a ledger keyed by (source, SHA-256): "exactly once per file" must survive renames,
re-deliveries, retries and crashes. The ledger row is written in the same transaction as the
file's rows, so either both exist or neither does, and the primary key turns a doubled task
into a conflict instead of a second copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import duckdb

from ingest.registry import SourceSpec
from ingest.sql import q, qualified

RAW = "raw"
LEDGER = "_load_ledger"
SOURCE_REGISTRY = "_source_registry"
LATEST_SUFFIX = "__latest"

DUCK_TYPES: dict[str, str] = {
    "varchar": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "double": "DOUBLE",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
}

RAW_METADATA: tuple[tuple[str, str], ...] = (
    ("_source_file", "VARCHAR"),
    ("_file_sha256", "VARCHAR"),
    ("_row_number", "BIGINT"),
    ("_loaded_at", "TIMESTAMP"),
    ("_run_id", "VARCHAR"),
)
REJECTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_file", "VARCHAR"),
    ("_file_sha256", "VARCHAR"),
    ("_line_number", "BIGINT"),
    ("_reason", "VARCHAR"),
    ("_raw_line", "VARCHAR"),
    ("_run_id", "VARCHAR"),
    ("_loaded_at", "TIMESTAMP"),
)
LEDGER_DDL = f"""
CREATE TABLE IF NOT EXISTS {qualified(RAW, LEDGER)} (
    source VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    rows_in_file BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    new_columns VARCHAR[],
    run_id VARCHAR,
    loaded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (source, file_sha256)
)"""
REGISTRY_DDL = f"""
CREATE OR REPLACE TABLE {qualified(RAW, SOURCE_REGISTRY)} (
    source VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    record_key VARCHAR NOT NULL,
    timestamp_column VARCHAR,
    birth_date_format VARCHAR,
    field VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL
)"""

T = TypeVar("T")


def retry_conflicts(action: Callable[[], T], attempts: int = 20) -> T:
    """Run catalog DDL, retrying write-write conflicts with a concurrent task in-process."""
    for attempt in range(attempts):
        try:
            return action()
        except duckdb.TransactionException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema ``raw`` and the load ledger if they do not exist yet."""

    def create() -> None:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(RAW)}")
        con.execute(LEDGER_DDL)

    retry_conflicts(create)


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    """{column name: DuckDB type} of a table in the current database, in column order."""
    rows = con.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_catalog = current_database() AND table_schema = $schema
             AND table_name = $table ORDER BY ordinal_position""",
        {"schema": schema, "table": table},
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def ensure_source_tables(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """Create ``raw.<source>``, ``raw.<source>__rejected`` and the ``__latest`` helper view.

    The tables exist as soon as a source is registered (dbt can select from them before the
    first file arrives) and gain any registry column they are missing.
    """

    def create() -> None:
        types = spec.column_types
        wanted = [(c, DUCK_TYPES[types.get(c, "varchar")]) for c in spec.required_columns]
        _ensure_table(con, spec.table, [*RAW_METADATA, *wanted])
        _ensure_table(con, spec.rejected_table, [*REJECTED_COLUMNS, (spec.record_key, "VARCHAR")])
        refresh_latest_view(con, spec)

    retry_conflicts(create)


def _ensure_table(
    con: duckdb.DuckDBPyConnection, table: str, columns: Iterable[tuple[str, str]]
) -> None:
    columns = list(columns)
    existing = {name.lower() for name in table_columns(con, RAW, table)}
    if not existing:
        body = ", ".join(f"{q(name)} {kind}" for name, kind in columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {qualified(RAW, table)} ({body})")
        return
    for name, kind in columns:
        if name.lower() not in existing:
            con.execute(f"ALTER TABLE {qualified(RAW, table)} ADD COLUMN {q(name)} {kind}")


def refresh_latest_view(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """``raw.<source>__latest``: one row per record key, the latest load wins.

    Raw stays append-only (re-delivered events and new file versions are kept); this view
    shows the dedup rule staging applies (``latest_per_key``: ``_loaded_at`` then
    ``_row_number`` descending).
    """
    con.execute(
        f"""CREATE OR REPLACE VIEW {qualified(RAW, spec.table + LATEST_SUFFIX)} AS
            SELECT * FROM {qualified(RAW, spec.table)}
            QUALIFY row_number() OVER (
                PARTITION BY {q(spec.record_key)}
                ORDER BY _loaded_at DESC, _row_number DESC, _source_file DESC) = 1"""
    )


def write_source_registry(
    con: duckdb.DuckDBPyConnection, specs: Iterable[SourceSpec]
) -> int:
    """Replace ``raw._source_registry``: one row per (source, canonical identity field)."""
    rows = [
        (
            spec.name,
            spec.kind,
            spec.record_key,
            spec.timestamp,
            spec.birth_date_format,
            canonical,
            column,
        )
        for spec in specs
        for canonical, column in spec.identity.items()
    ]

    def write() -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(REGISTRY_DDL)
            if rows:
                con.executemany(
                    f"INSERT INTO {qualified(RAW, SOURCE_REGISTRY)} VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    retry_conflicts(write)
    return len(rows)


def already_loaded(con: duckdb.DuckDBPyConnection, source: str, sha256: str) -> bool:
    """Did a committed load of these exact bytes for this source happen (under any name)?"""
    row = con.execute(
        f"SELECT count(*) FROM {qualified(RAW, LEDGER)} "
        "WHERE source = $source AND file_sha256 = $sha",
        {"source": source, "sha": sha256},
    ).fetchone()
    return bool(row and row[0])


def has_history(con: duckdb.DuckDBPyConnection, source: str) -> bool:
    """Has any file of this source been loaded before?"""
    row = con.execute(
        f"SELECT count(*) FROM {qualified(RAW, LEDGER)} WHERE source = $source",
        {"source": source},
    ).fetchone()
    return bool(row and row[0])
