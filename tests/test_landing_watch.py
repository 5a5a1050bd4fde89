"""The landing watch (dags/cdp_landing_watch.py, off by default) starts cdp_pipeline when files
arrive: what counts as arrived, and one real watch run on demo files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdp.settings import REPO_ROOT
from ingest.arrivals import arrived, landing_snapshot, read_seen, write_seen
from ingest.registry import load_registry

REGISTRY = load_registry(REPO_ROOT / "config" / "sources.yml")


def _land(landing: Path, relative: str, text: str) -> Path:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_counts_as_arrived_when_new_or_changed_never_twice(tmp_path: Path) -> None:
    landing, state = tmp_path / "landing", tmp_path / "airflow" / "seen.json"
    export = _land(landing, "crm_customers/export-1.csv", "crm_row_id\n1\n")
    _land(landing, "crm_customers/.partial.csv", "crm_row_id\n2\n")  # ingest skips it too
    _land(landing, "unregistered/file.csv", "x\n")
    first = landing_snapshot(landing, REGISTRY)
    assert arrived(first, read_seen(state)) == ["crm_customers/export-1.csv"]
    write_seen(state, first)
    assert arrived(landing_snapshot(landing, REGISTRY), read_seen(state)) == []
    export.write_text("crm_row_id\n1\n3\n", encoding="utf-8")  # re-delivered, changed
    _land(landing, "pos_orders/orders.csv", "order_id\n9\n")
    assert arrived(landing_snapshot(landing, REGISTRY), read_seen(state)) == [
        "crm_customers/export-1.csv", "pos_orders/orders.csv"]


@pytest.mark.integration
def test_the_watch_starts_the_pipeline_on_arrived_files_and_remembers_them(
        tmp_path: Path) -> None:
    from airflow.models import DagRun

    from cdp.airflow_env import ensure_metadata_db
    from cdp.run import load_dag
    from core.paths import DataPaths

    paths = DataPaths(tmp_path / "home").ensure()
    _land(paths.landing, "crm_customers/export-1.csv", "crm_row_id\n1\n")
    ensure_metadata_db(paths)
    before = {run.run_id for run in DagRun.find(dag_id="cdp_pipeline")}
    watch = load_dag("cdp_landing_watch")
    assert watch.is_paused_upon_creation is True  # off until a user unpauses it
    run = watch.test(run_conf={"cdp_home": str(paths.home)})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"new_landing_files": "success", "start_pipeline": "success",
                      "remember": "success"}
    started = [r for r in DagRun.find(dag_id="cdp_pipeline") if r.run_id not in before]
    assert len(started) == 1 and started[0].conf["cdp_home"] == str(paths.home)
    seen = read_seen(paths.home / "airflow" / "landing_seen.json")
    assert list(seen) == ["crm_customers/export-1.csv"]
