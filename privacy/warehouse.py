"""A person's rows out of the DuckDB files, and the files rewritten so their bytes are gone.

Raw is the only input the build recomputes from, so deleting there (every version of each of
their record keys, quarantined lines naming them, set-aside re-deliveries) and rebuilding
removes them from every model. DuckDB does not overwrite freed blocks, so a file that held them
is then copied table by table into a new file that replaces it (``compact``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from core.vocabulary import quote_identifier as q
from ingest.ledger import RAW, REDELIVERED
from ingest.registry import SourceSpec
from ingest.sql import execute_count, qualified


def delete_raw(con: duckdb.DuckDBPyConnection, specs: Iterable[SourceSpec],
               records: dict[str, set[str]], needles: set[str]) -> dict[str, int]:
    """Delete the person's raw, quarantined and set-aside rows in one transaction; counts per
    table (``raw.<source>``, ``raw.<source>__rejected``, ``raw._redelivered``)."""
    counts: dict[str, int] = {}
    texts = sorted(n for n in needles if len(n) >= 5)
    con.execute("BEGIN TRANSACTION")
    try:
        for spec in specs:
            keys = sorted(records.get(spec.name, set()))
            key = f"CAST({q(spec.record_key)} AS VARCHAR)"
            if keys:
                counts[f"raw.{spec.table}"] = execute_count(
                    con, f"DELETE FROM {qualified(RAW, spec.table)} "
                    f"WHERE {key} IN (SELECT unnest($keys))", {"keys": keys})
                counts[f"raw.{REDELIVERED}"] = counts.get(f"raw.{REDELIVERED}", 0) + (
                    execute_count(con, f"DELETE FROM {qualified(RAW, REDELIVERED)} "
                                  "WHERE source = $source AND record_key IN (SELECT unnest($keys))",
                                  {"source": spec.name, "keys": keys}))
            counts[f"raw.{spec.rejected_table}"] = execute_count(
                con, f"""DELETE FROM {qualified(RAW, spec.rejected_table)}
                    WHERE {key} IN (SELECT unnest($keys))
                       OR list_bool_or([contains(coalesce(_raw_line, ''), n)
                                        FOR n IN $texts])""",
                {"keys": keys, "texts": texts})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {table: n for table, n in counts.items() if n}


def compact(db_path: Path) -> None:
    """Rewrite ``db_path`` into a fresh file (schemas, tables, views, macros, data) and swap it
    in: freed blocks holding deleted values do not survive. Call with no connection open."""
    tmp = db_path.with_name(f"{db_path.name}.compact.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS source_db", [str(db_path)])
        con.execute("ATTACH ? AS target_db", [str(tmp)])
        con.execute("COPY FROM DATABASE source_db TO target_db")
        con.execute("DETACH source_db")
        con.execute("CHECKPOINT target_db")
        con.execute("DETACH target_db")
    finally:
        con.close()
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, db_path)
    db_path.with_name(db_path.name + ".wal").unlink(missing_ok=True)


def holds_person(db_path: Path, records: dict[str, set[str]], needles: set[str]) -> bool:
    """Does a DuckDB file (a publication, an archive) hold any of the person's records or
    values: their (source, record id) in the identity graph, or a needle in any text column."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        pairs = [[s, r] for s, ids in records.items() for r in ids]
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        if ("main", "fct_identity_graph") in tables and pairs:
            found = con.execute(
                "SELECT count(*) FROM main.fct_identity_graph "
                "WHERE [source, record_id] IN (SELECT unnest($pairs))", {"pairs": pairs}
            ).fetchone()
            if found and found[0]:
                return True
        values = sorted(needles)
        if not values:
            return False
        for schema, table in tables:
            columns = con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = $s "
                "AND table_name = $t AND data_type = 'VARCHAR'", {"s": schema, "t": table}
            ).fetchall()
            if not columns:
                continue
            condition = " OR ".join(f"{q(c)} IN (SELECT unnest($v))" for (c,) in columns)
            hit = con.execute(f"SELECT count(*) FROM {q(schema)}.{q(table)} WHERE {condition}",
                              {"v": values}).fetchone()
            if hit and hit[0]:
                return True
        return False
    finally:
        con.close()


def scrub_database(db_path: Path, person: Any) -> int:
    """Delete the person's rows from every table of a DuckDB file (their profiles, their
    records, any row holding one of their values), then :func:`compact` it; rows deleted.

    The fallback for a publication the erasure could not rebuild (the gate refused): coarser
    than a rebuild (their profiles go whole), never leaving a value behind."""
    if not db_path.exists():
        return 0
    con = duckdb.connect(str(db_path))
    deleted = 0
    try:
        pairs = [[s, r] for s, ids in person.records.items() for r in ids]
        params = {"ids": sorted(person.profile_ids) or [""], "pairs": pairs or [["", ""]],
                  "values": sorted(person.needles) or [""]}
        for schema, table in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables()").fetchall():
            columns = {str(c): str(t) for c, t in con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = $s "
                "AND table_name = $t", {"s": schema, "t": table}).fetchall()}
            conditions = [f"{q(c)} IN (SELECT unnest($values))"
                          for c, t in columns.items() if t == "VARCHAR"]
            if "profile_id" in columns:
                conditions.append("profile_id IN (SELECT unnest($ids))")
            if {"source", "record_id"} <= columns.keys():
                conditions.append("[source, record_id] IN (SELECT unnest($pairs))")
            if not conditions:
                continue
            sql = f"DELETE FROM {q(schema)}.{q(table)} WHERE {' OR '.join(conditions)}"
            deleted += execute_count(con, sql, params)
    finally:
        con.close()
    compact(db_path)
    return deleted
