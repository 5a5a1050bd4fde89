"""One writer at a time on the build warehouse.

DuckDB allows a single read-write process per file. Airflow serialises the writer tasks of one
DAG run; this lock also keeps a second run (a manual ``cdp run`` next to a scheduled one) from
writing at the same time. The lock is released by the kernel if the process dies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from core.locking import exclusive_lock
from core.paths import DataPaths


@contextmanager
def writer_lock(paths: DataPaths, timeout_s: float = 600.0) -> Iterator[None]:
    with exclusive_lock(paths.warehouse / ".writer.lock", timeout_s,
                        f"another process is writing {paths.build_db}"):
        yield
