"""Take a delivery back: its rows leave raw and quarantine, its ledger entry says withdrawn.

Why not just delete the file: raw is append-only and every check reads all of it, so a bad
delivery keeps failing the gate after its file is gone. Withdrawing removes exactly that
delivery's rows (by the SHA-256 of its bytes) in one transaction and keeps the ledger entry
(status ``withdrawn``), so the same bytes are not loaded again unless reinstated. Rows another
delivery re-sent identically (set aside in ``raw._redelivered``) are handed over to that
delivery instead of being lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.vocabulary import quote_identifier as q
from ingest.errors import IngestVerdict
from ingest.files import fingerprint
from ingest.ledger import (
    CONTENT_HASH,
    FILE_QUARANTINE,
    LEDGER,
    RAW,
    REDELIVERED,
    clear_file_failure,
    ensure_raw_schema,
    ensure_source_tables,
)
from ingest.registry import SourceSpec
from ingest.sql import execute_count, qualified

SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class WithdrawReport:
    """What a withdrawal did (counts and names only)."""

    source: str
    file_name: str
    file_sha256: str
    status: str  # withdrawn | already_withdrawn | blocked (never loaded, now refused)
    rows_removed: int = 0
    rows_rejected_removed: int = 0
    rows_handed_over: int = 0


def resolve_delivery(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing_dir: Path, target: str
) -> tuple[str, str]:
    """(file name, sha256) a user means by ``target``: a SHA-256, or a file name.

    A file name is the file in ``landing/<source>/`` if it is still there (its current
    bytes), else the one loaded delivery of that name in the ledger.
    """
    if SHA256.fullmatch(target):
        row = con.execute(
            f"SELECT file_name FROM {qualified(RAW, LEDGER)} "
            "WHERE source = $s AND file_sha256 = $h "
            f"UNION ALL SELECT file_name FROM {qualified(RAW, FILE_QUARANTINE)} "
            "WHERE source = $s AND file_sha256 = $h LIMIT 1",
            {"s": spec.name, "h": target},
        ).fetchone()
        if row is None:
            raise IngestVerdict(
                f"source {spec.name}: no delivery with sha256 {target} (neither loaded nor set "
                "aside)", source=spec.name)
        return str(row[0]), target
    path = landing_dir / target
    if path.is_file():
        return target, fingerprint(path, landing_dir, text=False).sha256
    rows = con.execute(
        f"SELECT file_sha256 FROM {qualified(RAW, LEDGER)} "
        "WHERE source = $s AND file_name = $f AND status = 'loaded' ORDER BY loaded_at",
        {"s": spec.name, "f": target},
    ).fetchall()
    if not rows:
        raise IngestVerdict(
            f"source {spec.name}: no loaded delivery named {target!r} and no such file in "
            f"{landing_dir}", source=spec.name, file=target)
    if len(rows) > 1:
        shas = ", ".join(str(r[0]) for r in rows)
        raise IngestVerdict(
            f"source {spec.name}: {len(rows)} loaded deliveries are named {target!r}; "
            f"name one by its sha256: {shas}", source=spec.name, file=target)
    return target, str(rows[0][0])


def withdraw(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing_dir: Path, target: str,
    run_id: str,
) -> WithdrawReport:
    """Withdraw one delivery of ``spec`` (file name or sha256) in one transaction."""
    ensure_raw_schema(con)
    ensure_source_tables(con, spec)
    file_name, sha = resolve_delivery(con, spec, landing_dir, target)
    report = WithdrawReport(spec.name, file_name, sha, "withdrawn")
    params = {"source": spec.name, "sha": sha}
    con.execute("BEGIN TRANSACTION")
    try:
        row = con.execute(
            f"SELECT status FROM {qualified(RAW, LEDGER)} WHERE source = $source "
            "AND file_sha256 = $sha", params).fetchone()
        if row is not None and row[0] == "withdrawn":
            report.status = "already_withdrawn"
        elif row is None:
            # Never loaded (set aside, or not yet seen): refuse the bytes from now on.
            report.status = "blocked"
            con.execute(
                f"""INSERT INTO {qualified(RAW, LEDGER)}
                    (source, file_name, file_sha256, rows_in_file, rows_loaded, rows_rejected,
                     run_id, loaded_at, status, withdrawn_at)
                    VALUES ($source, $file, $sha, 0, 0, 0, $run_id, now()::TIMESTAMP,
                            'withdrawn', now()::TIMESTAMP)""",
                {**params, "file": file_name, "run_id": run_id})
        else:
            report.rows_handed_over = _hand_over(con, spec, sha)
            report.rows_removed = execute_count(
                con, f"DELETE FROM {qualified(RAW, spec.table)} WHERE _file_sha256 = $sha",
                {"sha": sha})
            report.rows_rejected_removed = execute_count(
                con, f"DELETE FROM {qualified(RAW, spec.rejected_table)} "
                "WHERE _file_sha256 = $sha", {"sha": sha})
            con.execute(
                f"DELETE FROM {qualified(RAW, REDELIVERED)} "
                "WHERE source = $source AND _file_sha256 = $sha", params)
            con.execute(
                f"UPDATE {qualified(RAW, LEDGER)} SET status = 'withdrawn', "
                "withdrawn_at = now()::TIMESTAMP WHERE source = $source AND file_sha256 = $sha",
                params)
        clear_file_failure(con, spec.name, sha)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report


def reinstate(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing_dir: Path, target: str
) -> str:
    """Undo a withdrawal: the bytes load again on the next run if the file is in landing."""
    ensure_raw_schema(con)
    if SHA256.fullmatch(target):
        sha = target
    else:
        path = landing_dir / target
        rows = con.execute(
            f"SELECT file_sha256 FROM {qualified(RAW, LEDGER)} "
            "WHERE source = $s AND file_name = $f AND status = 'withdrawn'",
            {"s": spec.name, "f": target}).fetchall()
        if path.is_file():
            sha = fingerprint(path, landing_dir, text=False).sha256
        elif len(rows) == 1:
            sha = str(rows[0][0])
        else:
            raise IngestVerdict(
                f"source {spec.name}: {len(rows)} withdrawn deliveries named {target!r}; "
                "name one by its sha256", source=spec.name, file=target)
    deleted = execute_count(
        con, f"DELETE FROM {qualified(RAW, LEDGER)} WHERE source = $s AND file_sha256 = $h "
        "AND status = 'withdrawn'", {"s": spec.name, "h": sha})
    if not deleted:
        raise IngestVerdict(
            f"source {spec.name}: delivery {sha} is not withdrawn", source=spec.name)
    return sha


def _hand_over(con: duckdb.DuckDBPyConnection, spec: SourceSpec, sha: str) -> int:
    """Rows of the withdrawn delivery that an active delivery re-sent become that delivery's."""
    table = qualified(RAW, spec.table)
    key = q(spec.record_key)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _cdp_handover AS
            SELECT r.rowid AS id, d.rowid AS redelivered_id, d._source_file, d._file_sha256,
                   d._row_number, d._loaded_at, d._run_id
            FROM {table} r
            JOIN {qualified(RAW, REDELIVERED)} d
              ON d.source = $source AND d.record_key = CAST(r.{key} AS VARCHAR)
             AND d.{q(CONTENT_HASH)} = r.{q(CONTENT_HASH)} AND d._file_sha256 <> $sha
            JOIN {qualified(RAW, LEDGER)} l
              ON l.source = $source AND l.file_sha256 = d._file_sha256 AND l.status = 'loaded'
            WHERE r._file_sha256 = $sha
            QUALIFY row_number() OVER (PARTITION BY r.rowid
                                       ORDER BY d._loaded_at, d._row_number) = 1""",
        {"source": spec.name, "sha": sha})
    moved = execute_count(con, "SELECT count(*) FROM temp.main._cdp_handover", {})
    if moved:
        con.execute(
            f"""UPDATE {table} SET _source_file = h._source_file, _file_sha256 = h._file_sha256,
                    _row_number = h._row_number, _loaded_at = h._loaded_at, _run_id = h._run_id
                FROM temp.main._cdp_handover h WHERE {table}.rowid = h.id""")
        con.execute(
            f"""UPDATE {qualified(RAW, LEDGER)} l
                SET rows_loaded = l.rows_loaded + m.n, rows_duplicate = l.rows_duplicate - m.n
                FROM (SELECT _file_sha256, count(*) AS n FROM temp.main._cdp_handover
                      GROUP BY 1) m
                WHERE l.source = $source AND l.file_sha256 = m._file_sha256""",
            {"source": spec.name})
        con.execute(
            f"DELETE FROM {qualified(RAW, REDELIVERED)} "
            "WHERE rowid IN (SELECT redelivered_id FROM temp.main._cdp_handover)")
    con.execute("DROP TABLE temp.main._cdp_handover")
    return moved
