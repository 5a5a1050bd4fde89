"""Write-audit-publish on real DuckDB files: atomic swap, rollback, readers never blocked."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from profiles.publishing.publish import PublishError, archive_dir, publish, rollback


def _make_build(path: Path, version: int, rows: int = 1_000) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS staging")
        con.execute("CREATE OR REPLACE TABLE staging.secret AS SELECT 'pii' AS email")
        con.execute(
            "CREATE OR REPLACE TABLE main.dim_profiles AS "
            f"SELECT 'P' || i AS profile_id, {version} AS version FROM range(?) t(i)",
            [rows],
        )


def _version(published: Path) -> int:
    with duckdb.connect(str(published), read_only=True) as con:
        return con.execute("SELECT max(version) FROM main.dim_profiles").fetchone()[0]


def test_publish_copies_only_published_schemas(tmp_path: Path) -> None:
    build, published = tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    _make_build(build, 1)
    publication = publish(build, published, "run-1")
    assert publication.tables == {"main.dim_profiles": 1_000}
    with duckdb.connect(str(published), read_only=True) as con:
        schemas = {r[0] for r in con.execute("SELECT schema_name FROM duckdb_tables()").fetchall()}
        assert schemas == {"main"}
        assert con.execute("SELECT run_id FROM main._publication").fetchone()[0] == "run-1"
    assert not list(tmp_path.glob("*.tmp"))


def test_rollback_restores_previous_publication(tmp_path: Path) -> None:
    build, published = tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    for version in (1, 2, 3):
        _make_build(build, version)
        publish(build, published, f"run-{version}")
    assert _version(published) == 3
    rollback(published)
    assert _version(published) == 2
    rollback(published)
    assert _version(published) == 1
    with pytest.raises(PublishError, match="no earlier publication"):
        rollback(published)


def test_publish_keeps_only_the_last_n_publications(tmp_path: Path) -> None:
    build, published = tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    for version in range(6):
        _make_build(build, version, rows=10)
        publish(build, published, f"run-{version}", keep=2)
    assert len(list(archive_dir(published).glob("published-*.duckdb"))) == 2


def test_missing_build_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    published = tmp_path / "published.duckdb"
    with pytest.raises(PublishError, match="does not exist"):
        publish(tmp_path / "nope.duckdb", published, "run-x")
    assert not published.exists()


def test_reader_holding_published_open_is_not_blocked(tmp_path: Path) -> None:
    build, published = tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    _make_build(build, 1)
    publish(build, published, "run-1")
    reader = duckdb.connect(str(published), read_only=True)
    try:
        _make_build(build, 2)
        publish(build, published, "run-2")
        # The open reader keeps a consistent view of the publication it opened ...
        assert reader.execute("SELECT max(version) FROM main.dim_profiles").fetchone()[0] == 1
    finally:
        reader.close()
    # ... and new readers see the new one.
    assert _version(published) == 2


# Runs publish or rollback in a child process that SIGKILLs itself at its N-th traced line
# of profiles/publishing/publish.py (0: never; prints how many lines it ran). Deterministic, so
# every point between two statements is hit, including between archiving and the swap.
_KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
import profiles.publishing.publish as publish_module

action, kill_at = sys.argv[1], int(sys.argv[2])
build, published = Path(sys.argv[3]), Path(sys.argv[4])
lines = 0

def trace(frame, event, arg):
    global lines
    if frame.f_code.co_filename != publish_module.__file__:
        return None
    if event == "line":
        lines += 1
        if lines == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return trace

sys.settrace(trace)
if action == "publish":
    publish_module.publish(build, published, "killed-run")
else:
    publish_module.rollback(published)
sys.settrace(None)
print(lines)
"""


def _snapshot(db: Path) -> dict[str, str]:
    """Every published table's full content (as one digest) plus the publication's run id."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL"
        ).fetchall()
        snapshot = {}
        for schema, table in tables:
            sql = (
                f'SELECT run_id FROM "{schema}"."{table}"'
                if table == "_publication"
                else f'SELECT md5(string_agg(t::VARCHAR, \'|\' ORDER BY t::VARCHAR)) '
                f'FROM "{schema}"."{table}" t'
            )
            snapshot[f"{schema}.{table}"] = con.execute(sql).fetchone()[0]
    return snapshot


def _run_killable(action: str, kill_at: int, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, action, str(kill_at),
         str(home / "build.duckdb"), str(home / "published.duckdb")],
        capture_output=True, text=True, check=False, timeout=120,
    )


def _kill_everywhere(action: str, base: Path, tmp_path: Path) -> list[Path]:
    """Copies of ``base`` in which ``action`` was killed at each of its lines, in turn."""
    dry = tmp_path / "dry"
    shutil.copytree(base, dry)
    counted = _run_killable(action, 0, dry)
    assert counted.returncode == 0, counted.stderr
    total = int(counted.stdout.strip())
    assert total > 10
    homes = [tmp_path / f"kill-{n}" for n in range(1, total + 1)]
    for home in homes:
        shutil.copytree(base, home)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: _run_killable(action, n, homes[n - 1]),
                                range(1, total + 1)))
    assert all(r.returncode == -signal.SIGKILL for r in results), [r.stderr for r in results]
    return homes


def _two_publications(base: Path) -> tuple[dict[str, str], dict[str, str]]:
    """base/published.duckdb at version 1 with version 0 archived; the build at version 2."""
    base.mkdir()
    build, published = base / "build.duckdb", base / "published.duckdb"
    snapshots = []
    for version in (0, 1):
        _make_build(build, version, rows=200)
        publish(build, published, f"run-{version}")
        snapshots.append(_snapshot(published))
    _make_build(build, 2, rows=300)
    return snapshots[0], snapshots[1]


@pytest.mark.integration  # one killed subprocess per line, ~40 s
def test_publish_killed_at_every_line_leaves_old_or_new(tmp_path: Path) -> None:
    v0, v1 = _two_publications(tmp_path / "base")
    reference = tmp_path / "reference"
    shutil.copytree(tmp_path / "base", reference)
    publish(reference / "build.duckdb", reference / "published.duckdb", "killed-run")
    v2 = _snapshot(reference / "published.duckdb")

    outcomes = set()
    for home in _kill_everywhere("publish", tmp_path / "base", tmp_path):
        published = home / "published.duckdb"
        now = _snapshot(published)
        assert now in (v1, v2), home.name
        outcomes.add(now["main._publication"])
        # Rollback goes to the publication before the current one, never to itself ...
        rollback(published)
        assert _snapshot(published) == (v0 if now == v1 else v1), home.name
        # ... and the next publish cleans up after the killed one.
        publish(home / "build.duckdb", published, "next-run")
        assert not list(home.glob("*.tmp*")), home.name
    assert outcomes == {"run-1", "killed-run"}  # killed before and after the swap


@pytest.mark.integration  # one killed subprocess per line, ~15 s
def test_rollback_killed_at_every_line_leaves_old_or_previous(tmp_path: Path) -> None:
    v0, v1 = _two_publications(tmp_path / "base")
    outcomes = set()
    for home in _kill_everywhere("rollback", tmp_path / "base", tmp_path):
        published = home / "published.duckdb"
        now = _snapshot(published)
        assert now in (v0, v1), home.name
        outcomes.add(now["main._publication"])
        if now == v1:
            rollback(published)
        assert _snapshot(published) == v0, home.name
        with pytest.raises(PublishError, match="no earlier publication"):
            rollback(published)
    assert outcomes == {"run-0", "run-1"}


_PUBLISH_SCRIPT = """
import sys
from pathlib import Path
from profiles.publishing.publish import publish
publish(Path(sys.argv[1]), Path(sys.argv[2]), "killed-run")
"""


@pytest.mark.integration  # a killed subprocess, 3-5 s each
@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8, 1.5])
def test_publish_killed_mid_copy_leaves_old_or_new(tmp_path: Path, delay: float) -> None:
    """The line-level kills above cannot stop a long DuckDB statement half-way; this can."""
    build, published = tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    _make_build(build, 1, rows=10)
    publish(build, published, "run-1")
    _make_build(build, 2, rows=3_000_000)
    proc = subprocess.Popen([sys.executable, "-c", _PUBLISH_SCRIPT, str(build), str(published)])
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _version(published) in (1, 2)
    # A later publish still works and cleans up after the killed one.
    publish(build, published, "run-3")
    assert _version(published) == 2
    assert not list(tmp_path.glob("*.tmp*"))
