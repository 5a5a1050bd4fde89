"""Landing ``POST /events`` batches durably, each event id once.

Each accepted batch becomes a new file ``landing/api_events/<UTC date>/<time>-<random>.jsonl``:
written under a hidden temporary name, fsynced, renamed into place and the rename fsynced, so
ingest (which knows a delivery by the SHA-256 of the whole file) never sees a half-written or
growing file. An event id already landed - in any file, by any process, before a restart - is
acknowledged without being written again: the ids are read back from the landed files under an
exclusive lock, only the files this process has not read yet.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.files import fsync_path
from core.locking import exclusive_lock
from profiles.activation.hot_events import FIELDS, landed_files, raise_sequence, read_landed

LOCK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Landed:
    written: list[str]
    """Event ids of this call's file, in the order posted."""
    duplicates: list[str]
    """Event ids already landed (or repeated within the batch): acknowledged, not written."""


class EventLog:
    """The API's events landing folder; one instance per app, safe across threads and
    processes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._thread_lock = threading.Lock()
        self._known: set[str] = set()
        self._read: set[Path] = set()

    def land(self, lines: Iterable[dict[str, Any]], now: datetime | None = None) -> Landed:
        """Write the lines whose ``event_id`` is new as one file (every key of ``FIELDS``)."""
        now = now or datetime.now(UTC)
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, exclusive_lock(self.folder / ".lock", LOCK_TIMEOUT_S,
                                               "another process is landing API events"):
            self._read_new_files()
            new: dict[str, dict[str, Any]] = {}
            duplicates: list[str] = []
            for line in lines:
                if line["event_id"] in self._known or line["event_id"] in new:
                    duplicates.append(line["event_id"])
                else:
                    new[line["event_id"]] = {key: line.get(key) for key in FIELDS}
            if new:  # known only once written: a failed write leaves them postable again
                self._read.add(self._write(list(new.values()), now))
                self._known.update(new)
                raise_sequence(self.folder)  # the other processes' hot lists follow
        return Landed(list(new), duplicates)

    def _read_new_files(self) -> None:
        for path in landed_files(self.folder):
            if path not in self._read:
                self._known.update(str(event["event_id"]) for event in read_landed(path))
                self._read.add(path)

    def _write(self, lines: list[dict[str, Any]], now: datetime) -> Path:
        day = self.folder / f"{now:%Y-%m-%d}"
        day.mkdir(exist_ok=True)
        name = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}.jsonl"
        final, tmp = day / name, day / f".{name}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        for folder in (day, self.folder):
            fsync_path(folder)
        return final

