"""``cdp privacy forget`` killed (SIGKILL) at several points, then run again: the same end
state as one uninterrupted run on a copy of the same data directory - that one run by the
``cdp_privacy`` DAG (dag.test) from a request file, which it deletes when done.

The kill points are watched from outside, as an operator's ``kill -9`` would land: after the
raw rows went (the plan file's journal says ``raw``), in the middle of the rebuild (its first
stage report is written, dbt is running), and after the archives step. The rerun resumes the
request from its plan and finishes; published tables, exports, landing files and the request
log match the uninterrupted run, and nothing of the person is left in either.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from digests import output_digests

from cdp.settings import data_paths
from core.paths import DataPaths
from privacy.forget import plan_path, request_id
from privacy.identifiers import parse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CDP = Path(sys.executable).parent / "cdp"


def _copy(demo_run, target: Path) -> DataPaths:
    source, _ = demo_run
    shutil.copytree(source.home, target, ignore=shutil.ignore_patterns("airflow"))
    return data_paths(target)


def _someone(paths: DataPaths) -> str:
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        row = con.execute("SELECT email FROM main.fct_identity_graph WHERE source = "
                          "'crm_customers' AND email IS NOT NULL ORDER BY record_id "
                          "LIMIT 1 OFFSET 7").fetchone()
    assert row is not None
    return str(row[0])


def _forget(paths: DataPaths, email: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(CDP), "privacy", "forget", f"email:{email}", "--home", str(paths.home)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "NO_COLOR": "1"}, start_new_session=True)


def _done_steps(plan: Path) -> set[str]:
    try:
        return set(json.loads(plan.read_text())["done"])
    except (OSError, ValueError, KeyError):
        return set()


def _kill_when(process: subprocess.Popen[str], reached: object, limit: float = 300) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if reached():  # type: ignore[operator]
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return
        if process.poll() is not None:
            raise AssertionError("forget ended before the kill point:\n"
                                 + (process.stdout.read() if process.stdout else ""))
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError("kill point not reached in time")


def _landing(paths: DataPaths) -> dict[str, str]:
    return {str(p.relative_to(paths.landing)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(paths.landing.rglob("*")) if p.is_file()}


def _request_log(paths: DataPaths) -> list[tuple[object, ...]]:
    with duckdb.connect(str(paths.build_db), read_only=True) as con:
        ledger = con.execute("SELECT source, file_name, file_sha256, status, rows_in_file, "
                             "rows_loaded, rows_rejected FROM raw._load_ledger "
                             "ORDER BY ALL").fetchall()
        erased = con.execute("SELECT identifier_hash, identifier_type FROM "
                             "raw._erased_identifiers ORDER BY ALL").fetchall()
        status = con.execute("SELECT status FROM raw._erasure_requests").fetchall()
    return [*ledger, *erased, *status]


def _suppressed(paths: DataPaths) -> list[tuple[object, ...]]:
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        return con.execute("SELECT identifier_hash, identifier_type, channel, reason, source "
                           "FROM main.dim_suppression_list ORDER BY ALL").fetchall()


def test_killed_three_times_then_resumed_ends_as_one_uninterrupted_run(
        demo_run, tmp_path: Path) -> None:
    from cdp.run import load_dag

    reference = _copy(demo_run, tmp_path / "reference")
    email = _someone(reference)
    request = tmp_path / "requests.csv"
    request.write_text(f"kind,value\nemail,{email}\n", encoding="utf-8")
    run = load_dag("cdp_privacy").test(run_conf={
        "cdp_home": str(reference.home), "requests_file": str(request)})
    assert str(run.state) == "success"
    assert not request.exists()
    (report_file,) = (reference.reports / "privacy").glob("erasure-*.json")
    report = json.loads(report_file.read_text())
    assert report["status"] == "completed" and report["removed"]["rebuild"]["republished"]

    killed = _copy(demo_run, tmp_path / "killed")
    rid = request_id([parse(f"email:{email}")])
    plan = plan_path(killed, rid)
    rebuild_reports = killed.run_reports(f"{rid}__rebuild")
    kill_points = [
        lambda: "raw" in _done_steps(plan),
        lambda: (rebuild_reports / "train_identity.json").exists(),
        lambda: "archives" in _done_steps(plan),
    ]
    for reached in kill_points:
        _kill_when(_forget(killed, email), reached)
        assert plan.exists()  # the request is pending, its plan kept for the rerun
    rerun = _forget(killed, email)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output
    assert "(resumed)" in output
    assert not plan.exists()

    # the same outputs, but for when each erasure happened (an erased identifier's
    # suppressed_at is its erasure's time)
    suppressions = "table main.dim_suppression_list"
    outputs = {k: v for k, v in output_digests(killed).items() if k != suppressions}
    assert outputs == {k: v for k, v in output_digests(reference).items() if k != suppressions}
    assert _suppressed(killed) == _suppressed(reference)
    assert _landing(killed) == _landing(reference)
    assert _request_log(killed) == _request_log(reference)
    needles = [email.encode(), email.lower().encode()]
    for home in (killed.home, reference.home):
        leftovers = [p for p in home.rglob("*") if p.is_file()
                     and any(n in p.read_bytes() for n in needles)]
        assert leftovers == []
