"""Warehouse-side bookkeeping: the ``raw`` schema, per-source tables, load ledger, registry.

Why a ledger keyed by (source, SHA-256): "exactly once per file" must survive renames,
re-deliveries, retries and crashes. The ledger row is written in the same transaction as the
file's rows, so either both exist or neither does, and the primary key turns a doubled task
into a conflict instead of a second copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import duckdb

from core.vocabulary import LOAD_COLUMNS, QUARANTINE_COLUMNS
from core.vocabulary import quote_identifier as q
from ingest.registry import SourceSpec
from ingest.sql import qualified

RAW = "raw"
LEDGER = "_load_ledger"
SOURCE_REGISTRY = "_source_registry"
#: Files that failed to load (unreadable, a mapped column missing): one row per source and
#: bytes, removed once the file loads or is withdrawn.
FILE_QUARANTINE = "_file_quarantine"
#: Rows skipped because an identical version of the record was already loaded: kept so a
#: withdrawal of the earlier delivery hands the row over instead of losing it.
REDELIVERED = "_redelivered"
#: What stays of an erased person (privacy/): the SHA-256 of each normalised identifier
#: (``privacy.identifiers.identifier_hash``), so the suppression list keeps them uncontactable
#: and a replayed delivery holding them is quarantined with reason ``erased``.
ERASED_IDENTIFIERS = "_erased_identifiers"
#: One row per erasure request: hashed identifiers, times, and counts of what was removed where.
ERASURE_REQUESTS = "_erasure_requests"
#: The quarantine reason of a row that carries an erased identifier (its line is not kept).
ERASED_REASON = "erased"
LATEST_SUFFIX = "__latest"
CONTENT_HASH = "_content_hash"

DUCK_TYPES: dict[str, str] = {
    "varchar": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "double": "DOUBLE",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
}

#: DuckDB type of every metadata column ingest reserves (``core.vocabulary`` names them).
METADATA_TYPES: dict[str, str] = {
    "_source_file": "VARCHAR",
    "_file_sha256": "VARCHAR",
    "_row_number": "BIGINT",
    "_loaded_at": "TIMESTAMP",
    "_run_id": "VARCHAR",
    CONTENT_HASH: "UHUGEINT",
    "_line_number": "BIGINT",
    "_reason": "VARCHAR",
    "_raw_line": "VARCHAR",
}
RAW_METADATA: tuple[tuple[str, str], ...] = tuple(
    (name, METADATA_TYPES[name]) for name in LOAD_COLUMNS
)
#: Quarantine columns in table order: where the line came from, the line, which run.
REJECTED_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (name, METADATA_TYPES[name])
    for name in ("_source_file", "_file_sha256", *QUARANTINE_COLUMNS, "_run_id", "_loaded_at")
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
#: Columns added after the first release; ``ensure_raw_schema`` adds them to older ledgers.
#: ``rows_in_file`` = loaded + rejected + duplicate. ``delivery`` is the registry's declared
#: kind at load time; ``rows_known_key`` counts rows whose key an earlier delivery already had
#: (what the gate infers snapshot vs incremental from); the record-time span is the
#: registered timestamp's min and max over the loaded rows.
LEDGER_LATER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "VARCHAR DEFAULT 'loaded'"),
    ("withdrawn_at", "TIMESTAMP"),
    ("rows_duplicate", "BIGINT DEFAULT 0"),
    ("rows_known_key", "BIGINT"),
    ("first_record_at", "TIMESTAMP"),
    ("last_record_at", "TIMESTAMP"),
    ("delivery", "VARCHAR"),
)
FILE_QUARANTINE_DDL = f"""
CREATE TABLE IF NOT EXISTS {qualified(RAW, FILE_QUARANTINE)} (
    source VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    run_id VARCHAR,
    failed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (source, file_sha256)
)"""
REDELIVERED_DDL = f"""
CREATE TABLE IF NOT EXISTS {qualified(RAW, REDELIVERED)} (
    source VARCHAR NOT NULL,
    record_key VARCHAR,
    {CONTENT_HASH} UHUGEINT NOT NULL,
    _source_file VARCHAR NOT NULL,
    _file_sha256 VARCHAR NOT NULL,
    _row_number BIGINT,
    _loaded_at TIMESTAMP,
    _run_id VARCHAR
)"""
REGISTRY_DDL = f"""
CREATE OR REPLACE TABLE {qualified(RAW, SOURCE_REGISTRY)} (
    source VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    record_key VARCHAR NOT NULL,
    timestamp_column VARCHAR,
    birth_date_format VARCHAR,
    field VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL,
    delivery VARCHAR
)"""

ERASED_IDENTIFIERS_DDL = f"""
CREATE TABLE IF NOT EXISTS {qualified(RAW, ERASED_IDENTIFIERS)} (
    identifier_hash VARCHAR NOT NULL,
    identifier_type VARCHAR NOT NULL,
    request_id VARCHAR NOT NULL,
    erased_at TIMESTAMP NOT NULL,
    PRIMARY KEY (identifier_hash)
)"""
ERASURE_REQUESTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {qualified(RAW, ERASURE_REQUESTS)} (
    request_id VARCHAR NOT NULL PRIMARY KEY,
    identifier_hashes VARCHAR[] NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    status VARCHAR NOT NULL,
    removed VARCHAR
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
        for name, kind in LEDGER_LATER_COLUMNS:
            con.execute(
                f"ALTER TABLE {qualified(RAW, LEDGER)} ADD COLUMN IF NOT EXISTS {q(name)} {kind}"
            )
        con.execute(FILE_QUARANTINE_DDL)
        con.execute(REDELIVERED_DDL)
        con.execute(ERASED_IDENTIFIERS_DDL)
        con.execute(ERASURE_REQUESTS_DDL)

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
        wanted = [(c, DUCK_TYPES[types.get(c, "varchar")]) for c in spec.raw_columns]
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


def content_hash_sql(values: Mapping[str, str]) -> str:
    """SQL for a record version's content identity: ``{column: value expression}`` hashed.

    Independent of the file's bytes, column order and encoding: the typed values are joined
    as ``name<RS>value`` pairs sorted by lower-cased column name, and NULLs (a column the
    delivery lacks) are left out, so a row read before a column was added hashes the same.
    MD5 because the hash is stored: it must not change with the DuckDB version.
    """
    parts = ", ".join(
        f"{_literal(name.lower() + chr(30))} || CAST({values[name]} AS VARCHAR)"
        for name in sorted(values, key=str.lower)
    )
    return f"md5_number(concat_ws(chr(31), {parts}))" if parts else "md5_number('')"


def content_columns(columns: Iterable[str]) -> list[str]:
    """A raw table's record content: every column but ingest's load metadata."""
    metadata = {name for name, _ in RAW_METADATA}
    return [c for c in columns if c not in metadata]


def hash_unhashed_rows(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """Give every row of ``raw.<source>`` without a content hash its hash (cheap when none):
    the rows just appended, and those of a first load or of a release before the hash."""
    row = con.execute(
        f"SELECT count(*) FROM {qualified(RAW, spec.table)} WHERE {q(CONTENT_HASH)} IS NULL"
    ).fetchone()
    if not row or not row[0]:
        return
    columns = content_columns(table_columns(con, RAW, spec.table))
    expression = content_hash_sql({c: q(c) for c in columns})
    con.execute(
        f"UPDATE {qualified(RAW, spec.table)} SET {q(CONTENT_HASH)} = {expression} "
        f"WHERE {q(CONTENT_HASH)} IS NULL"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def current_version_order(timestamp: str | None) -> str:
    """ORDER BY that makes the first row of a record key its current version.

    The record's own change time first (a replayed old export is history, never current),
    load order only to break ties. Mirrors dbt's ``current_version_order`` macro, which every
    staging and identity model uses.
    """
    own_time = f"{q(timestamp)} DESC NULLS LAST, " if timestamp else ""
    return f"{own_time}_loaded_at DESC, _row_number DESC"


def refresh_latest_view(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """``raw.<source>__latest``: one row per record key, its current version.

    Raw keeps every version (updates and replays of old exports alike); this view shows the
    rule staging applies (``current_version_order``).
    """
    con.execute(
        f"""CREATE OR REPLACE VIEW {qualified(RAW, spec.table + LATEST_SUFFIX)} AS
            SELECT * FROM {qualified(RAW, spec.table)}
            QUALIFY row_number() OVER (
                PARTITION BY {q(spec.record_key)}
                ORDER BY {current_version_order(spec.timestamp)}) = 1"""
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
            spec.delivery,
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
                    f"INSERT INTO {qualified(RAW, SOURCE_REGISTRY)} "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    retry_conflicts(write)
    return len(rows)


def already_loaded(con: duckdb.DuckDBPyConnection, source: str, sha256: str) -> bool:
    """Did a committed load of these exact bytes for this source happen (under any name)?

    A withdrawn delivery counts: its bytes are not loaded again unless reinstated.
    """
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


def record_file_failure(
    con: duckdb.DuckDBPyConnection, source: str, file_name: str, sha256: str, reason: str,
    run_id: str,
) -> None:
    """Note a file that could not be loaded (the latest reason per source and bytes wins)."""
    con.execute(
        f"""INSERT OR REPLACE INTO {qualified(RAW, FILE_QUARANTINE)}
            VALUES ($source, $file, $sha, $reason, $run_id, now()::TIMESTAMP)""",
        {"source": source, "file": file_name, "sha": sha256, "reason": reason, "run_id": run_id},
    )


def clear_file_failure(con: duckdb.DuckDBPyConnection, source: str, sha256: str) -> None:
    """The file loaded or was withdrawn: it is no longer pending in the file quarantine."""
    con.execute(
        f"DELETE FROM {qualified(RAW, FILE_QUARANTINE)} "
        "WHERE source = $source AND file_sha256 = $sha",
        {"source": source, "sha": sha256},
    )
