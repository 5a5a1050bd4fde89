"""Write-audit-publish: copy the audited marts into a fresh file and swap it in atomically.

Readers (analysts, exports, the API) only ever open ``published.duckdb`` read-only. Publishing
never writes into that file: it builds ``published.duckdb.<run>.tmp`` next to it, checkpoints and
fsyncs it, keeps the previous publication under ``publications/`` and then ``os.replace``s the
new file over the old one, which is atomic on POSIX. A crash at any point leaves either the old
or the new publication in place, never a half-written one. The serving store of the new file
(:mod:`profiles.serving`) is written before the swap, named by the run id, so the API finds it
the moment it opens the new file; stores of publications no longer kept are deleted with them.

Publish and rollback hold a lock on the publication while they write, and the first thing they
do under it is remove the temporary files a killed writer left behind: those are full copies of
the personal data and must not linger, but a running writer's temp file must not be touched.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from core.files import fsync_path
from core.locking import LockBusy, exclusive_lock
from core.vocabulary import quote_identifier, safe_run_id
from profiles.publishing.published import run_id_of
from profiles.serving.store import build_store, prune_stores, store_path

if TYPE_CHECKING:
    from profiles.serving.offers import Catalogue

log = logging.getLogger(__name__)

PUBLISHED_SCHEMAS = ("main", "segments")
"""Schemas analysts and marketing tools see; staging, intermediate and raw stay in the build."""

DEFAULT_KEEP = 5
LOCK_TIMEOUT_S = 600.0


class PublishError(RuntimeError):
    """Publication could not be completed; the previous publication is untouched."""


@dataclass(frozen=True)
class Publication:
    path: Path
    tables: dict[str, int]
    archived_previous: Path | None


def archive_dir(published_db: Path) -> Path:
    return published_db.parent / "publications"


def publish(
    build_db: Path, published_db: Path, run_id: str, keep: int = DEFAULT_KEEP,
    catalogue: Catalogue | None = None,
) -> Publication:
    """Copy the published schemas of ``build_db`` into a new file and swap it in, its serving
    store (with ``catalogue``'s next best offers) written first."""
    with _writing(published_db):
        return _publish(build_db, published_db, run_id, keep, catalogue)


def _publish(build_db: Path, published_db: Path, run_id: str, keep: int,
             catalogue: Catalogue | None) -> Publication:
    if not build_db.exists():
        raise PublishError(f"nothing to publish: build warehouse {build_db} does not exist")
    tmp = published_db.with_name(f"{published_db.name}.{safe_run_id(run_id)}.tmp")
    tables: dict[str, int] = {}
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute("ATTACH ? AS build (READ_ONLY)", [str(build_db)])
            rows = con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "WHERE database_name = 'build' AND schema_name IN (SELECT unnest(?)) "
                "ORDER BY schema_name, table_name",
                [list(PUBLISHED_SCHEMAS)],
            ).fetchall()
            if not rows:
                raise PublishError(f"build warehouse {build_db} has no tables to publish")
            for schema, table in rows:
                name = f"{quote_identifier(schema)}.{quote_identifier(table)}"
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM build.{name}")
                count = con.execute(f"SELECT count(*) FROM {name}").fetchone()
                tables[f"{schema}.{table}"] = int(count[0]) if count else 0
            con.execute(
                "CREATE TABLE main._publication AS SELECT ?::VARCHAR AS run_id, "
                "?::TIMESTAMP AS published_at",
                [run_id, datetime.now(UTC).replace(tzinfo=None)],
            )
            con.execute("DETACH build")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        fsync_path(tmp)
        build_store(tmp, store_path(published_db, run_id), run_id, catalogue)
        archived = _archive_current(published_db, keep)
        os.replace(tmp, published_db)
        fsync_path(published_db.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _prune_serving_stores(published_db)  # a store built for the failed swap goes too
        raise
    _prune_serving_stores(published_db)
    log.info("published %d tables for run %s", len(tables), run_id)
    return Publication(published_db, tables, archived)


@contextmanager
def _writing(published_db: Path) -> Iterator[None]:
    """Hold the publication's writer lock, then clear what killed writers left behind.

    ``flock`` is released by the kernel when its holder dies, so a killed publish never blocks
    the next one; a running one makes the next wait instead of losing its temp file to cleanup.
    """
    lock = published_db.with_name(f"{published_db.name}.lock")
    busy = f"another publish or rollback of {published_db} is still running"
    try:
        with exclusive_lock(lock, LOCK_TIMEOUT_S, busy):
            _remove_stale_tmp(published_db)
            yield
    except LockBusy as error:
        raise PublishError(str(error)) from None


def remove_leftovers(published_db: Path) -> None:
    """Clear what a killed publish or rollback left behind (its temp copy holds personal data).

    Every pipeline run calls this first, so a leftover does not wait for the next publish
    (a run whose gate fails never gets there).
    """
    with _writing(published_db):
        pass


def _remove_stale_tmp(published_db: Path) -> None:
    """Drop temporary files (and DuckDB WALs) of a killed publish or rollback.

    Call with the lock held: then no writer is running, so any such file is an orphan.
    """
    for pattern in (f"{published_db.name}.*.tmp", f"{published_db.name}.*.tmp.wal"):
        for stale in published_db.parent.glob(pattern):
            stale.unlink(missing_ok=True)
    for stale in archive_dir(published_db).glob("published-*.duckdb.tmp"):
        stale.unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard link, or copy through a temp file, so a kill never leaves a partial ``target``."""
    try:
        os.link(source, target)
    except OSError:
        partial = target.with_name(f"{target.name}.tmp")
        shutil.copy2(source, partial)
        os.replace(partial, target)


def _archived(published_db: Path) -> list[Path]:
    """Archived publications, oldest first, without entries that are the current file."""
    archived = sorted(archive_dir(published_db).glob("published-*.duckdb"))
    if not published_db.exists():
        return archived
    return [a for a in archived if not os.path.samefile(a, published_db)]


def _archive_current(published_db: Path, keep: int) -> Path | None:
    """Keep a hard link (or copy) of the current publication so it can be rolled back to."""
    if not published_db.exists():
        return None
    folder = archive_dir(published_db)
    folder.mkdir(exist_ok=True)
    already = [a for a in sorted(folder.glob("published-*.duckdb"))
               if os.path.samefile(a, published_db)]  # archived by a publish that was killed
    if already:
        target = already[-1]
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"published-{stamp}.duckdb"
        _link_or_copy(published_db, target)
        fsync_path(folder)
    for old in sorted(folder.glob("published-*.duckdb"))[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return target


def rollback(published_db: Path) -> Path:
    """Restore the most recent earlier publication (atomically) and drop it from the archive."""
    with _writing(published_db):
        return _rollback(published_db)


def _rollback(published_db: Path) -> Path:
    archived = _archived(published_db)
    if not archived:
        raise PublishError("no earlier publication to roll back to")
    previous = archived[-1]
    tmp = published_db.with_name(f"{published_db.name}.rollback.tmp")
    _link_or_copy(previous, tmp)
    fsync_path(tmp)
    os.replace(tmp, published_db)
    fsync_path(published_db.parent)
    # Killed before this unlink, the entry is the current file and _archived skips it.
    previous.unlink()
    _prune_serving_stores(published_db)
    return previous


def scrub_in_place(published_db: Path, scrub: Callable[[Path], int],
                   catalogue: Catalogue | None = None) -> int:
    """Change the current publication in place (an erasure that could not rebuild it) under
    the writer lock, returning what ``scrub`` returns: its serving store, which holds what is
    scrubbed, is deleted first - a reader meanwhile answers from the file - and written again
    from the scrubbed file."""
    with _writing(published_db):
        run_id = run_id_of(published_db)
        if run_id is not None:
            store_path(published_db, run_id).unlink(missing_ok=True)
        changed = scrub(published_db)
        if run_id is not None:
            build_store(published_db, store_path(published_db, run_id), run_id, catalogue)
        return changed


def prune_serving_stores(published_db: Path) -> int:
    """Delete the serving stores of publications that are neither current nor archived (under
    the writer lock: a publish may be writing a new one)."""
    with _writing(published_db):
        return _prune_serving_stores(published_db)


def _prune_serving_stores(published_db: Path) -> int:
    current = [published_db] if published_db.exists() else []
    return prune_stores(published_db, current + _archived(published_db))
