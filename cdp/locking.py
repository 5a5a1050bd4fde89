"""One writer at a time on the build warehouse.

DuckDB allows a single read-write process per file. Airflow serialises the writer tasks of one
DAG run; this lock also keeps a second run (a manual ``cdp run`` next to a scheduled one) from
writing at the same time. The lock is released by the kernel if the process dies.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cdp.settings import DataPaths


class WarehouseBusy(RuntimeError):
    """Another process holds the writer lock for longer than we were willing to wait."""


@contextmanager
def writer_lock(paths: DataPaths, timeout_s: float = 600.0) -> Iterator[None]:
    paths.warehouse.mkdir(parents=True, exist_ok=True)
    lock_path = paths.warehouse / ".writer.lock"
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WarehouseBusy(
                        f"another process is writing {paths.build_db}; "
                        f"gave up after {timeout_s:.0f}s"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
