"""The process's read-only view of the publication.

One read-only connection per process, re-opened when a publication swaps the file (its inode,
size or mtime changes); per-publication results (a segment's members, identifier hashes) are
materialised once in memory and dropped with the connection. Results of the suppression chain
are built again when an event batch lands (the hot list changed). The publication's serving
store (:mod:`profiles.serving`) is found by its run id whenever the file is opened.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool

from profiles.activation.hot_events import (
    load_hot_events,
    pending_profiles,
    quick_stamp,
)
from profiles.publishing.published import open_published, publication_run_id
from profiles.serving.store import ServingStore

log = logging.getLogger("profiles.api")


class Warehouse:
    """The process's read-only view of the publication, swapped when the file is replaced."""

    def __init__(self, published_db: Path, exports_dir: Path, max_age: float,
                 events: Path | None = None) -> None:
        self.published_db = published_db
        self.exports_dir = exports_dir
        self.max_age = max_age
        self.events = events
        self._lock = threading.RLock()  # a build may ensure another build first
        self._con: duckdb.DuckDBPyConnection | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._built: dict[str, tuple[float, str]] = {}
        self._store: ServingStore | None = None
        self._snapshot: tuple[object, ServingStore | None, frozenset[str]] | None = None

    def _file_stamp(self) -> tuple[int, int, int]:
        try:
            stat = self.published_db.stat()
        except FileNotFoundError:
            raise HTTPException(503, "no publication yet: run the pipeline") from None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """Call with the lock held: the current connection, re-opened after a swap."""
        stamp = self._file_stamp()
        if self._con is None or stamp != self._stamp:
            self._con, self._stamp, self._built = open_published(self.published_db), stamp, {}
            self._con.execute("SET preserve_insertion_order = true")  # paging relies on it
            run_id = publication_run_id(self._con)
            self._store = ServingStore.of(self.published_db, run_id)
            log.info("opened publication %s", run_id)
        return self._con

    async def serving(self) -> tuple[ServingStore | None, frozenset[str]]:
        """The current publication's serving store (None: answers come from the file) and the
        profiles events name that the publication does not hold yet: their answers come from
        the chain with the hot list, not from the store built before those events.

        Read without the connection's lock, which a segment build may hold for seconds: only
        when the file or the hot list changed is the snapshot renewed, in a worker thread."""
        stamp = (self._file_stamp(), quick_stamp(self.events))
        snapshot = self._snapshot
        if snapshot is None or snapshot[0] != stamp:
            snapshot = await run_in_threadpool(self._renew, stamp)
        return snapshot[1], snapshot[2]

    def _renew(self, stamp: object) -> tuple[object, ServingStore | None, frozenset[str]]:
        with self._lock:
            con = self._connection()
            load_hot_events(con, self.events)
            self._snapshot = (stamp, self._store, pending_profiles(con))
            return self._snapshot

    @contextmanager
    def exclusive(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor while no build and no other exclusive user runs: for work that writes the
        connection's memory tables per request (a profile's next best offers)."""
        with self._lock:
            cur = self._connection().cursor()
            try:
                yield cur
            finally:
                cur.close()

    def cursor(self, key: str | None = None,
               build: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
               follows_events: bool = False) -> duckdb.DuckDBPyConnection:
        """A cursor on the current publication, after ``build`` ran for it under ``key`` -
        once per publication, and again after ``max_age`` seconds, since frequency caps and
        cool-downs move with the clock, and (``follows_events``) after an event batch landed."""
        with self._lock:
            con = self._connection()
            if key is not None and build is not None:
                built_at, events = self._built.get(key, (-math.inf, ""))
                stamp = quick_stamp(self.events) if follows_events else ""
                if time.monotonic() - built_at > self.max_age or stamp != events:
                    build(con)
                    self._built[key] = (time.monotonic(), stamp)
            return con.cursor()

