"""Segment exports, read from the published warehouse only.

Each segment table in the published ``segments`` schema becomes
``exports/<segment>/<run_id>/members.csv`` plus a ``manifest.json`` (row count, SHA-256,
run id), written to a temporary folder first and renamed into place, so a tool polling the
exports folder never sees a half-written export.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb


class ExportError(RuntimeError):
    """An export could not be written; nothing was placed under exports/."""


@dataclass(frozen=True)
class ExportManifest:
    segment: str
    run_id: str
    rows: int
    file: str
    sha256: str
    exported_at: str


@dataclass(frozen=True)
class Export:
    directory: Path
    manifest: ExportManifest

    @property
    def members_file(self) -> Path:
        return self.directory / self.manifest.file


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sql_string(path: Path) -> str:
    """COPY takes no bound parameters: quote our own (never user-supplied) path safely."""
    return str(path).replace("'", "''")


def list_segments(published_db: Path) -> list[str]:
    with duckdb.connect(str(published_db), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'segments' "
            "ORDER BY table_name"
        ).fetchall()
    return [row[0] for row in rows]


def export_segment(published_db: Path, exports_dir: Path, segment: str, run_id: str) -> Export:
    """Write one segment's members to CSV with a manifest; replaces an export of the same run."""
    if not published_db.exists():
        raise ExportError(f"no published warehouse at {published_db}: run the pipeline first")
    if segment not in list_segments(published_db):
        raise ExportError(f"unknown segment {segment!r}: not in the published 'segments' schema")
    safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    final_dir = exports_dir / segment / safe_run
    tmp_dir = exports_dir / segment / f".{safe_run}.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    csv_path = tmp_dir / "members.csv"
    with duckdb.connect(str(published_db), read_only=True) as con:
        con.execute(
            f"COPY (SELECT * FROM segments.\"{segment}\" ORDER BY profile_id) "
            f"TO '{_sql_string(csv_path)}' "
            "(HEADER, DELIMITER ',')"
        )
        count = con.execute(f'SELECT count(*) FROM segments."{segment}"').fetchone()
    manifest = ExportManifest(
        segment=segment,
        run_id=run_id,
        rows=int(count[0]) if count else 0,
        file="members.csv",
        sha256=_sha256(csv_path),
        exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    (tmp_dir / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
    shutil.rmtree(final_dir, ignore_errors=True)
    os.replace(tmp_dir, final_dir)
    return Export(final_dir, manifest)


def export_all(published_db: Path, exports_dir: Path, run_id: str) -> list[Export]:
    return [
        export_segment(published_db, exports_dir, segment, run_id)
        for segment in list_segments(published_db)
    ]
