"""A real ``cdp serve`` subprocess on a free port, for the API tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def cdp_serve(home: Path, api_keys: str, log_path: Path,
              write_keys: str = "", workers: int = 1) -> Iterator[str]:
    """Start ``cdp serve`` on ``home`` (config from ``home/config``), wait until it answers,
    yield its base URL and stop it; its output goes to ``log_path`` (a pipe nobody reads
    would block the server)."""
    port = free_port()
    env = {**os.environ, "CDP_API_KEYS": api_keys, "CDP_API_WRITE_KEYS": write_keys,
           "CDP_CONFIG": str(home / "config")}
    cdp = Path(sys.executable).parent / "cdp"
    with log_path.open("a") as log:
        process = subprocess.Popen([str(cdp), "serve", "--home", str(home), "--port", str(port),
                                    "--workers", str(workers)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    httpx.get(f"{url}/openapi.json", timeout=1)
                    break
                except httpx.TransportError:
                    if process.poll() is not None:
                        raise RuntimeError(log_path.read_text()) from None
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)
