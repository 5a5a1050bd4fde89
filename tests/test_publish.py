"""Write-audit-publish on real DuckDB files: atomic swap, rollback, readers never blocked."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from profiles.publish import PublishError, archive_dir, publish, rollback


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


_PUBLISH_SCRIPT = """
import sys
from pathlib import Path
from profiles.publish import publish
publish(Path(sys.argv[1]), Path(sys.argv[2]), "killed-run")
"""


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8, 1.5])
def test_publish_killed_at_any_point_leaves_old_or_new(tmp_path: Path, delay: float) -> None:
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
    assert not list(tmp_path.glob("*.tmp"))
