"""The person out of the files next to the warehouse: exports, reports, logs.

Exports are rewritten row by row (``scrub_exports``): the person's rows keep their profile id
and lose every other value, so the next export of the segment lists them in ``left.csv`` and
a marketing tool deletes them too (Art. 19); hashed audience rows of their e-mail or phone
are dropped; each manifest gets the new row counts and SHA-256s and notes the erasure.
Everything else is text scrubbed (``scrub_text``): each of their values, as written and as
JSON or HTML would escape it, becomes ``[erased]``. Binary files cannot be scrubbed that way;
``files_holding`` finds any that still hold a value, so the report can say so.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ingest.sql import used_params

ERASED = b"[erased]"
#: Files scrubbed as text (reports, logs, data docs, dbt artefacts, task logs).
TEXT_SUFFIXES = (".json", ".jsonl", ".log", ".txt", ".html", ".htm", ".csv", ".md", ".yml",
                 ".yaml", ".sql", ".out", ".err", ".xml")
MEMBER_FILES = ("members.csv", "joined.csv", "left.csv")
AD_FILES = ("google_customer_match.csv", "meta_custom_audience.csv")
#: Shorter values (a house number, a two-letter code) would erase other people's text too.
MIN_NEEDLE = 5


def forms(needles: Iterable[str]) -> list[bytes]:
    """Each value as bytes, as written, JSON-escaped and HTML-escaped; longest first."""
    found: set[bytes] = set()
    for needle in needles:
        if len(needle) < MIN_NEEDLE:
            continue
        for text in (needle, json.dumps(needle)[1:-1], html.escape(needle)):
            found.add(text.encode("utf-8"))
    return sorted(found, key=len, reverse=True)


def _files(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in sorted(root.rglob("*")) if p.is_file())


def _replace_file(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.erasure.tmp")
    tmp.write_bytes(content)
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


def scrub_text(roots: Iterable[Path], needles: Iterable[str]) -> int:
    """Replace every form of every value in the text files under ``roots``; files changed."""
    patterns = forms(needles)
    changed = 0
    for path in _files(roots):
        if not path.name.lower().endswith(TEXT_SUFFIXES) or path.name.endswith(".erasure.tmp"):
            continue
        content = path.read_bytes()
        scrubbed = content
        for pattern in patterns:
            scrubbed = scrubbed.replace(pattern, ERASED)
        if scrubbed != content:
            _replace_file(path, scrubbed)
            changed += 1
    return changed


def files_holding(roots: Iterable[Path], needles: Iterable[str]) -> list[Path]:
    """Files under ``roots`` whose bytes still hold a form of a value (none, after an erasure;
    DuckDB files compress strings, so they are checked by SQL instead)."""
    patterns = forms(needles)
    return [p for p in _files(roots) if patterns and any(x in p.read_bytes() for x in patterns)]


def export_runs_with(exports: Path, profile_ids: set[str]) -> list[tuple[str, str]]:
    """(segment, run folder) of every export whose members include one of ``profile_ids``."""
    if not profile_ids:
        return []
    con = duckdb.connect()
    try:
        found = []
        for members in sorted(exports.glob("*/*/members.parquet")):
            hit = con.execute(
                "SELECT count(*) FROM read_parquet(?) WHERE profile_id IN (SELECT unnest(?))",
                [str(members), sorted(profile_ids)]).fetchone()
            if hit and hit[0]:
                found.append((members.parent.parent.name, members.parent.name))
        return found
    finally:
        con.close()


def scrub_exports(exports: Path, profile_ids: set[str], needles: set[str],
                  audience_hashes: set[str], request_id: str) -> int:
    """Rewrite every export folder holding the person; returns the folders rewritten."""
    con = duckdb.connect()
    rewritten = 0
    try:
        for folder in sorted(p for p in exports.glob("*/*") if p.is_dir()):
            blanked = _scrub_export(con, folder, profile_ids, needles, audience_hashes)
            if blanked is not None:
                _note_in_manifest(folder, request_id, blanked)
                rewritten += 1
    finally:
        con.close()
    return rewritten


def _scrub_export(con: duckdb.DuckDBPyConnection, folder: Path, profile_ids: set[str],
                  needles: set[str], audience_hashes: set[str]) -> set[str] | None:
    """Rewrite one export folder; the profile ids whose rows were blanked (None: the folder
    held nothing of the person)."""
    params = {"ids": sorted(profile_ids), "values": sorted(needles) or [""],
              "hashes": sorted(audience_hashes) or [""]}
    changed = False
    blanked_ids: set[str] = set()
    for name in (*MEMBER_FILES, "members.parquet"):
        path = folder / name
        if not path.exists():
            continue
        reader = (f"read_parquet('{_sql(path)}')" if name.endswith(".parquet") else
                  f"read_csv('{_sql(path)}', header = true, all_varchar = true)")
        columns = [d[0] for d in con.execute(f"SELECT * FROM {reader} LIMIT 0").description]
        if "profile_id" not in columns:
            continue
        theirs = ("profile_id IN (SELECT unnest($ids)) OR "
                  + " OR ".join(f'trim(CAST("{c}" AS VARCHAR)) IN (SELECT unnest($values))'
                                for c in columns))
        hits = _query(con, f"SELECT DISTINCT profile_id FROM {reader} WHERE {theirs}",
                      params).fetchall()
        if not hits:
            continue
        blanked_ids |= {str(h[0]) for h in hits}
        blanked = ", ".join(
            f'"{c}"' if c == "profile_id" else
            f'CASE WHEN profile_id IN (SELECT unnest($ids)) OR trim(CAST("{c}" AS VARCHAR)) '
            f'IN (SELECT unnest($values)) THEN NULL ELSE "{c}" END AS "{c}"'
            for c in columns)
        _copy(con, f"SELECT {blanked} FROM {reader}", path, params)
        changed = True
    for name in AD_FILES:
        path = folder / name
        if not path.exists():
            continue
        reader = f"read_csv('{_sql(path)}', header = true, all_varchar = true)"
        columns = [d[0] for d in con.execute(f"SELECT * FROM {reader} LIMIT 0").description]
        theirs = " OR ".join(f'"{c}" IN (SELECT unnest($hashes))' for c in columns)
        hit = _query(con, f"SELECT count(*) FROM {reader} WHERE {theirs}", params).fetchone()
        if hit and hit[0]:
            _copy(con, f"SELECT * FROM {reader} WHERE NOT ({theirs})", path, params)
            changed = True
    return blanked_ids if changed else None


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path,
          params: Mapping[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.erasure.tmp")
    options = "FORMAT parquet, COMPRESSION zstd" if path.suffix == ".parquet" else "HEADER"
    _query(con, f"COPY ({query}) TO '{_sql(tmp)}' ({options})", params)
    os.replace(tmp, path)


def _query(con: duckdb.DuckDBPyConnection, sql: str,
           params: Mapping[str, object]) -> duckdb.DuckDBPyConnection:
    """DuckDB refuses named parameters a statement does not use."""
    return con.execute(sql, used_params(sql, params))


def _sql(path: Path) -> str:
    return str(path).replace("'", "''")


def _note_in_manifest(folder: Path, request_id: str, profile_ids: set[str]) -> None:
    """New row counts and SHA-256s, and the erasure, in the folder's manifest."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        return
    manifest = json.loads(manifest_path.read_text())
    con = duckdb.connect()
    try:
        for entry in manifest.get("files", []):
            path = folder / entry["name"]
            if not path.exists():
                continue
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            reader = (f"read_parquet('{_sql(path)}')" if path.suffix == ".parquet" else
                      f"read_csv('{_sql(path)}', header = true, all_varchar = true)")
            count = con.execute(f"SELECT count(*) FROM {reader}").fetchone()
            entry["rows"] = int(count[0]) if count else 0
            if entry["name"] == manifest.get("file"):
                manifest["sha256"], manifest["rows"] = entry["sha256"], entry["rows"]
    finally:
        con.close()
    erasures = manifest.setdefault("erasures", [])
    if not any(e.get("request_id") == request_id for e in erasures):
        erasures.append({"request_id": request_id,
                         "rewritten_at": datetime.now(UTC).isoformat(),
                         "profile_ids": sorted(profile_ids)})
    _replace_file(manifest_path, json.dumps(manifest, indent=2).encode())
