"""Every SQL statement the API runs, as plain functions over a connection to the publication.

Tables ``build_*`` create live in the in-memory catalog, stored in ``profile_id`` order (the
connection preserves insertion order), so a keyset page can stop after ``limit`` rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb

from profiles.activation.config import ActivationConfig
from profiles.activation.export import member_rows_sql, sql_path
from profiles.activation.purposes import contact_values, deliverable_sql
from profiles.activation.segment import Segment
from profiles.activation.suppression import suppress
from profiles.publishing.published import PUBLISHED, require_tables
from profiles.serving.documents import documents_sql
from profiles.serving.store import IDENTIFIERS_SQL

IDENTITY_HASHES = "memory.main.identity_hashes"


def members_table(segment: Segment) -> str:
    return f'memory.main."members__{segment.name}"'


def build_members(con: duckdb.DuckDBPyConnection, segment: Segment,
                  config: ActivationConfig) -> None:
    """The segment's members after the suppression chain, as Mautic rows (deliverable values)."""
    result = suppress(con, segment, config.policy, table_prefix=f"api_{segment.name}",
                      events=config.events)
    con.execute(f"CREATE OR REPLACE TABLE {members_table(segment)} AS "
                f"{member_rows_sql(result.members, contact_values(con))} ORDER BY profile_id")
    con.execute(f"DROP TABLE {result.members}; DROP TABLE {result.drops}")


def changes_table(segment: str, since: str) -> str:
    """One table per segment and export compared against (run ids are hashed into the name)."""
    return (f'memory.main."changes__{segment}__'
            f'{hashlib.sha256(since.encode()).hexdigest()[:16]}"')


def build_changes(con: duckdb.DuckDBPyConnection, table: str, current: str,
                  exported_members: Path) -> None:
    """Who joined (in ``current``, not in the export's members.parquet) or left (the reverse)."""
    exported = sql_path(exported_members)
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS "
        f"SELECT profile_id, 'joined' AS change FROM {current} "
        f"ANTI JOIN read_parquet({exported}) AS e USING (profile_id) UNION ALL "
        f"SELECT profile_id, 'left' FROM read_parquet({exported}) AS e "
        f"ANTI JOIN {current} USING (profile_id) ORDER BY profile_id")


def rows_after(cur: duckdb.DuckDBPyConnection, table: str, after: str,
               count: int) -> list[dict[str, Any]]:
    """Up to ``count`` rows with a ``profile_id`` after ``after``, in stored order.

    No ORDER BY: the tables are created sorted, so the scan stops early instead of sorting
    everything after the cursor (4x faster paging through a million members).
    """
    rows = cur.execute(f"SELECT * FROM {table} WHERE profile_id > ? LIMIT ?",
                       [after, count]).fetchall()
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in rows]


def profile_document(cur: duckdb.DuckDBPyConnection, profile_id: str) -> str | None:
    """The profile's JSON document (:mod:`profiles.serving.documents`); ``None`` for an unknown
    id. A publication with a serving store is answered from that instead."""
    row = cur.execute(documents_sql(cur, one=True), {"profile_id": profile_id}).fetchone()
    return str(row[1]) if row else None


def profile_exists(cur: duckdb.DuckDBPyConnection, profile_id: str) -> bool:
    require_tables(cur, {"main.dim_profiles"}, "this endpoint")
    return cur.execute(f"SELECT count(*) FROM {PUBLISHED}.main.dim_profiles "
                       "WHERE profile_id = ?", [profile_id]).fetchone() != (0,)


def contact_of(cur: duckdb.DuckDBPyConnection,
               profile_id: str) -> tuple[str | None, str | None] | None:
    """The profile's deliverable e-mail and phone (either may be ``None``); ``None`` for an
    unknown profile or one with neither."""
    require_tables(cur, {"main.dim_profiles"}, "this endpoint")
    values = contact_values(cur)
    row = cur.execute(
        f"SELECT {deliverable_sql('p.email', 'p.profile_id', values)}, "
        f"{deliverable_sql('p.phone', 'p.profile_id', values)} "
        f"FROM {PUBLISHED}.main.dim_profiles AS p WHERE p.profile_id = ?", [profile_id]
    ).fetchone()
    return (row[0], row[1]) if row and (row[0] or row[1]) else None


def build_identity_hashes(con: duckdb.DuckDBPyConnection) -> None:
    """SHA-256 of every normalised email and phone in the identity graph, by profile (the
    serving store's own statement, for a publication without a store)."""
    require_tables(con, {"main.fct_identity_graph"}, "this endpoint")
    con.execute(f"CREATE OR REPLACE TABLE {IDENTITY_HASHES} AS {IDENTIFIERS_SQL}")


def profiles_with_hash(cur: duckdb.DuckDBPyConnection, kind: str, digest: str) -> list[str]:
    rows = cur.execute(f"SELECT profile_id FROM {IDENTITY_HASHES} WHERE digest = ? AND kind = ? "
                       "ORDER BY profile_id", [digest, kind]).fetchall()
    return [row[0] for row in rows]

