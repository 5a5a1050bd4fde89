"""Exclusive file locks between processes (``flock``): released by the kernel when the
holder dies, so a killed writer never blocks the next one."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockBusy(RuntimeError):
    """Another process held the lock for longer than we were willing to wait."""


@contextmanager
def exclusive_lock(lock_file: Path, timeout_s: float, busy_message: str) -> Iterator[None]:
    """Hold ``lock_file`` exclusively; raise :class:`LockBusy` with ``busy_message`` (plus the
    time waited) when it stays taken for ``timeout_s`` seconds."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockBusy(f"{busy_message}; gave up after {timeout_s:.0f}s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
