"""Which landing files arrived since the last look: what the landing-watch DAG starts a
pipeline run on.

A file is known by its path, size and modification time, kept in a small JSON file the
watcher owns; nothing here opens the warehouse (a running pipeline holds its lock). Seeing a
file again that ingest already loaded is harmless: ingest loads every file once by its
SHA-256, so a run it starts for nothing changes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ingest.files import discover
from ingest.registry import SourceSpec

#: path relative to landing/ -> [size, mtime_ns]
Snapshot = dict[str, list[int]]


def landing_snapshot(landing: Path, specs: Iterable[SourceSpec]) -> Snapshot:
    """Every file ingest would consider now (per registered source, by its glob)."""
    snapshot: Snapshot = {}
    for spec in specs:
        for path in discover(landing / spec.name, spec.path):
            stat = path.stat()
            snapshot[path.relative_to(landing).as_posix()] = [stat.st_size, stat.st_mtime_ns]
    return snapshot


def arrived(now: Snapshot, seen: Snapshot) -> list[str]:
    """Files new or changed since ``seen``, sorted."""
    return sorted(path for path, state in now.items() if seen.get(path) != state)


def read_seen(state_file: Path) -> Snapshot:
    if not state_file.exists():
        return {}
    return {str(k): [int(v[0]), int(v[1])] for k, v in json.loads(state_file.read_text()).items()}


def write_seen(state_file: Path, snapshot: Snapshot) -> None:
    """Replace the state atomically (a killed watcher leaves the old one)."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = state_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(snapshot, sort_keys=True))
    os.replace(temporary, state_file)
