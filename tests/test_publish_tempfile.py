"""Temp files of publish and rollback hold full copies of personal data: a killed writer's are
removed by the next writer, under the publication lock, so a running writer's never are."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
from test_publish import _make_build, _version

from profiles.publishing.publish import PublishError, archive_dir, publish, rollback

# Publishes build -> published as run "killed-run" and, once the temp copy is complete (just
# before it is fsynced and swapped in), either SIGKILLs itself or says "ready" and waits for a
# line on stdin before it carries on.
_PAUSE_SCRIPT = """
import linecache, os, signal, sys
from pathlib import Path
import profiles.publishing.publish as publish_module

action, build, published = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
reached = False

def trace(frame, event, arg):
    global reached
    if frame.f_code.co_filename != publish_module.__file__:
        return None
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    if event == "line" and not reached and line == "fsync_path(tmp)":
        reached = True
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        print("ready", flush=True)
        sys.stdin.readline()
    return trace

sys.settrace(trace)
publish_module.publish(build, published, "killed-run")
"""


def _writer(action: str, build: Path, published: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _PAUSE_SCRIPT, action, str(build),
                             str(published)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def _publication_run(published: Path) -> str:
    with duckdb.connect(str(published), read_only=True) as con:
        return con.execute("SELECT run_id FROM main._publication").fetchone()[0]


def _leftovers(published: Path) -> list[Path]:
    """Everything a publish or rollback may leave next to the publication or in the archive."""
    return sorted([*published.parent.glob("*.tmp*"), *archive_dir(published).glob("*.tmp*")])


def test_killed_publish_leaves_personal_data_that_the_next_publish_removes(
        tmp_path: Path) -> None:
    build, published = tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    _make_build(build, 1)
    publish(build, published, "run-1")
    _make_build(build, 2)
    killed = _writer("kill", build, published)
    killed.wait(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    stale = published.with_name("published.duckdb.killed-run.tmp")
    with duckdb.connect(str(stale), read_only=True) as con:  # a full copy of the profiles
        assert con.execute("SELECT count(*) FROM main.dim_profiles").fetchone()[0] == 1_000
    assert _version(published) == 1

    _make_build(build, 3)
    publish(build, published, "run-3")
    assert _leftovers(published) == []
    assert _version(published) == 3 and _publication_run(published) == "run-3"
    rollback(published)
    assert _version(published) == 1 and _publication_run(published) == "run-1"


@pytest.mark.parametrize("writer", ["publish", "rollback"])
def test_leftovers_go_even_when_the_next_writer_then_fails(tmp_path: Path, writer: str) -> None:
    """Whatever the earlier writer got to - a temp copy, its WAL, a rollback copy, a copied
    archive entry - is removed before the next one even checks its input."""
    published = tmp_path / "warehouse" / "published.duckdb"
    archive_dir(published).mkdir(parents=True)
    stale = [published.with_name(f"published.duckdb.{name}") for name in
             ("manual__2026-03-12T06_00_00_00_00.tmp", "killed-run.tmp.wal", "rollback.tmp",
              "rollback.tmp.tmp")]
    stale.append(archive_dir(published) / "published-20260312T060000000000Z.duckdb.tmp")
    for path in stale:
        path.write_text("anna@example.com,+4915100000001\n")
    with pytest.raises(PublishError, match="does not exist|no earlier publication"):
        if writer == "publish":
            publish(tmp_path / "no-build.duckdb", published, "run-1")
        else:
            rollback(published)
    assert _leftovers(published) == []


@pytest.mark.integration  # two writer subprocesses, > 2 s
def test_a_running_publish_keeps_its_temp_file_and_the_next_one_waits(tmp_path: Path) -> None:
    build, published = tmp_path / "build.duckdb", tmp_path / "published.duckdb"
    _make_build(build, 1)
    publish(build, published, "run-1")
    _make_build(build, 2)
    running = _writer("pause", build, published)
    assert running.stdout is not None and running.stdin is not None
    assert running.stdout.readline() == "ready\n"
    own_tmp = published.with_name("published.duckdb.killed-run.tmp")

    next_publish = threading.Thread(target=publish, args=(build, published, "run-3"))
    next_publish.start()
    next_publish.join(timeout=1.5)
    assert next_publish.is_alive()  # waiting for the lock, not cleaning up
    assert own_tmp.exists()

    running.stdin.write("\n")
    running.stdin.close()
    assert running.wait(timeout=120) == 0
    next_publish.join(timeout=120)
    assert not next_publish.is_alive()
    assert _publication_run(published) == "run-3"
    archived = sorted(archive_dir(published).glob("published-*.duckdb"))
    assert [_publication_run(a) for a in archived] == ["run-1", "killed-run"]
    assert _leftovers(published) == []
