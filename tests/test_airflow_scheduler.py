"""The real thing: ``cdp airflow standalone`` (scheduler, DAG processor, triggerer, API
server) as a subprocess on a free loopback port, on a fresh data directory with generated
demo data; ``cdp_pipeline`` triggered through Airflow's REST API (v2) with params, as a data
engineer would, and polled until it ends.

* A run publishes the warehouse (every task was run by the scheduler's LocalExecutor
  and reached the API server with the shared JWT secret), and the publication (an asset
  event) starts cdp_export, which writes that run's exports.
* A bad delivery fails the quality gate: the run FAILED, nothing was published (the
  published file byte-identical).
* A misdeclared source column fails a dbt model: the build task is red in the UI, and its
  log in the UI names the model (headless Chromium, logged in through the login form; the
  screenshot goes to ``$CDP_TEST_ARTIFACTS``, else the test's data directory).

Bounded in time: one budget for the whole module; the components are stopped by their
process group in a finally. On a failure the components' output and the failed tasks' logs
are printed, with every secret of the data directory masked.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import yaml

from cdp.airflow_env import (
    admin_password,
    airflow_home,
    ensure_secrets,
    password_file,
    secrets_file,
)
from cdp.settings import REPO_ROOT, data_paths
from core.paths import DataPaths
from core.vocabulary import safe_run_id

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_ID = "cdp_pipeline"
DEMO_AS_OF = "2026-11-01T00:00"
#: The whole module: start, three runs and an export, stop (measured: about 4 minutes on 2
#: shared cores).
BUDGET_SECONDS = 720.0
STARTUP_SECONDS = 150.0
RUN_SECONDS = 240.0
#: Debian's Chromium (the Makefile installs it), headless and without background traffic.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Airflow:
    """A running ``cdp airflow standalone`` and a client of its REST API."""

    paths: DataPaths
    port: int
    process: subprocess.Popen[bytes]
    output: Path
    deadline: float
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30.0)

    def remaining(self, limit: float) -> float:
        return max(0.0, min(limit, self.deadline - time.monotonic()))

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One API call; a read time-out (the API server busy on 2 cores) is tried again."""
        for attempt in range(3):
            try:
                return self.client.request(method, url, **kwargs)
            except httpx.TimeoutException:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def wait_ready(self) -> None:
        """Until the API server answers, the scheduler and DAG processor are healthy, the
        DAG is parsed, and a token is issued for the generated admin password."""
        end = time.monotonic() + self.remaining(STARTUP_SECONDS)
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError(f"cdp airflow standalone exited ({self.process.returncode})"
                                     + self.report())
            try:
                health = self.client.get("/api/v2/monitor/health").json()
                healthy = all(health.get(part, {}).get("status") == "healthy"
                              for part in ("metadatabase", "scheduler", "dag_processor"))
                if healthy and not self.client.headers.get("Authorization"):
                    self.login()
                if healthy and self.client.get(f"/api/v2/dags/{DAG_ID}").status_code == 200:
                    return
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(2)
        raise AssertionError(f"Airflow not ready within {STARTUP_SECONDS:.0f} s" + self.report())

    def login(self) -> None:
        response = self.client.post("/auth/token", json={
            "username": "admin", "password": admin_password(self.paths)})
        assert response.status_code == 201, response.text
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def trigger(self, **params: Any) -> str:
        response = self.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                                json={"logical_date": None, "conf": params})
        assert response.status_code == 200, response.text
        return str(response.json()["dag_run_id"])

    def wait_for(self, run_id: str, dag_id: str = DAG_ID) -> str:
        end = time.monotonic() + self.remaining(RUN_SECONDS)
        state = "unknown"
        while time.monotonic() < end:
            response = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            assert response.status_code == 200, response.text
            state = str(response.json()["state"])
            if state in ("success", "failed"):
                return state
            if self.process.poll() is not None:
                break
            time.sleep(3)
        raise AssertionError(f"run {run_id} still {state} after {RUN_SECONDS:.0f} s"
                             + self.report(run_id))

    def first_run_of(self, dag_id: str) -> dict[str, Any]:
        """The first run of ``dag_id``, once the scheduler has created it."""
        end = time.monotonic() + self.remaining(60.0)
        while time.monotonic() < end:
            response = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")
            assert response.status_code == 200, response.text
            runs = response.json()["dag_runs"]
            if runs:
                return dict(runs[0])
            time.sleep(2)
        raise AssertionError(f"no run of {dag_id} within 60 s" + self.report())

    def task_states(self, run_id: str) -> dict[str, str]:
        response = self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
        assert response.status_code == 200, response.text
        states = {}
        for ti in response.json()["task_instances"]:
            key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
            states[key] = str(ti["state"])
        return states

    def report(self, run_id: str | None = None) -> str:
        """The components' output and, for a run, its task states and the logs of its
        tasks that did not succeed: the tail of each, every secret masked."""
        masks = [*ensure_secrets(self.paths).values()]
        if password_file(self.paths).exists():
            masks.append(admin_password(self.paths))
        parts = [f"\n--- cdp airflow standalone (tail of {self.output}) ---",
                 _tail(self.output, 150)]
        if run_id is not None:
            logs = airflow_home(self.paths) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
            try:
                states = self.task_states(run_id)
                parts.append(f"--- task states of {run_id} ---\n{states}")
                unfinished = {task.split("[")[0] for task, state in states.items()
                              if state != "success"}
            except (AssertionError, httpx.HTTPError) as error:  # the API server is gone
                parts.append(f"--- task states of {run_id}: unknown ({error!r}) ---")
                unfinished = {p.name.removeprefix("task_id=") for p in logs.glob("task_id=*")}
            for task in sorted(unfinished):
                for log in sorted((logs / f"task_id={task}").glob("**/*.log")):
                    parts += [f"--- {log} ---", _tail(log, 60)]
        text = "\n".join(parts)
        for secret in masks:
            text = text.replace(secret, "***")
        return text


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return "(none)"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the standalone and everything it started: its process group (it runs in a
    session of its own), SIGTERM, then SIGKILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + grace
        while time.monotonic() < end:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                process.poll()
                return
            process.poll()  # reap the group leader once it exits
            time.sleep(0.5)
    process.poll()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airflow]:
    from cdp.demo.generator import generate

    started = time.monotonic()
    paths = data_paths(tmp_path_factory.mktemp("airflow-real-home")).ensure()
    generate(paths, people=300, seed=7, noise="default")
    port = _free_port()
    output = paths.home / "standalone.log"
    env = {
        **os.environ,
        "CDP_HOME": str(paths.home),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # Test only: no scheduled @daily run on unpausing, only the runs the test triggers
        # (and the export runs their publications start); log servers on free ports, so a
        # second Airflow on this machine does not collide.
        "CDP_PIPELINE_SCHEDULE": "none",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "NO_COLOR": "1",
    }
    cdp = Path(sys.executable).parent / "cdp"
    with output.open("wb") as sink:
        # The README's one step, from outside the repository: nothing may rely on the cwd.
        process = subprocess.Popen(
            [str(cdp), "airflow", "standalone", "--home", str(paths.home), "--port", str(port)],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=paths.home, start_new_session=True,
        )
    stack = Airflow(paths, port, process, output, deadline=started + BUDGET_SECONDS)
    try:
        stack.wait_ready()
        response = stack.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
        assert response.status_code == 200, response.text
        yield stack
    finally:
        stack.client.close()
        _stop(process)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _published_run_id(paths: DataPaths) -> str:
    with duckdb.connect(str(paths.published_db), read_only=True) as con:
        row = con.execute("SELECT run_id FROM main._publication").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(scope="module")
def published_run(airflow: Airflow) -> tuple[str, str]:
    """The first run on the fresh data directory: its run id and final state."""
    run_id = airflow.trigger(cdp_home=str(airflow.paths.home), as_of=DEMO_AS_OF)
    return run_id, airflow.wait_for(run_id)


def test_the_scheduler_runs_the_dag_and_publishes(
    airflow: Airflow, published_run: tuple[str, str]
) -> None:
    run_id, state = published_run
    assert state == "success", airflow.report(run_id)
    states = airflow.task_states(run_id)
    assert states["publish"] == "success"
    assert any(task.startswith("ingest[") for task in states)
    assert airflow.paths.published_db.exists()
    assert _published_run_id(airflow.paths) == run_id
    with duckdb.connect(str(airflow.paths.published_db), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM main.dim_profiles").fetchone()
    assert row is not None and row[0] > 0
    # The publication is an asset event: the scheduler starts cdp_export on it, which
    # exports as of the publishing run, under that run's id.
    export = airflow.first_run_of("cdp_export")
    assert export["run_type"] == "asset_triggered", export
    assert airflow.wait_for(export["dag_run_id"], "cdp_export") == "success", \
        airflow.report(export["dag_run_id"])
    exported = sorted(p.parent.name for p in airflow.paths.exports.glob(f"*/{safe_run_id(run_id)}"))
    assert exported == ["churn_winback_email", "email_newsletter", "movers_post"], exported
    # Everything Airflow generated is in the data directory; the secrets are private.
    for private in (secrets_file(airflow.paths), password_file(airflow.paths)):
        assert private.stat().st_mode & 0o077 == 0, private
    assert (airflow_home(airflow.paths) / "airflow.db").exists()
    assert not (REPO_ROOT / "simple_auth_manager_passwords.json.generated").exists()
    output = airflow.output.read_text(encoding="utf-8", errors="replace")
    for secret in [*ensure_secrets(airflow.paths).values(), admin_password(airflow.paths)]:
        assert secret not in output
    assert "Invalid auth token" not in output


def _bad_delivery(paths: DataPaths) -> Path:
    """A shop export with names in the email column and one key twice with other content
    (as in test_operator_deliveries): the raw gate fails on it."""
    source = paths.landing / "shop_accounts" / "accounts.csv"
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header, accounts = list(reader.fieldnames or []), list(reader)
    bad = [{**row, "account_id": f"UBAD{i:04d}", "email": f"{row['first_name']} {row['last_name']}"}
           for i, row in enumerate(accounts[:60])]
    bad.append({**bad[0], "street": "Andere Strasse"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(bad)
    target = source.with_name("accounts_bad.csv")
    target.write_text(buffer.getvalue(), encoding="utf-8")
    return target


def _run_that_fails(airflow: Airflow, failing_task: str, published: str,
                    **params: Any) -> str:
    """Trigger a run on the demo clock and assert it FAILED at ``failing_task``, that nothing
    after it ran, and that the publication (run ``published``) is byte-identical."""
    before = _sha256(airflow.paths.published_db)
    run_id = airflow.trigger(cdp_home=str(airflow.paths.home), as_of=DEMO_AS_OF, **params)
    state = airflow.wait_for(run_id)
    states = airflow.task_states(run_id)
    assert state == "failed", airflow.report(run_id)
    assert states[failing_task] == "failed", airflow.report(run_id)
    assert states["publish"] == "upstream_failed", states
    assert _sha256(airflow.paths.published_db) == before
    assert _published_run_id(airflow.paths) == published
    return run_id


def test_a_failing_gate_fails_the_run_and_publishes_nothing(
    airflow: Airflow, published_run: tuple[str, str]
) -> None:
    first_run, first_state = published_run
    if first_state != "success":
        pytest.skip("the first run did not publish (see the test before)")
    _bad_delivery(airflow.paths)

    _run_that_fails(airflow, "quality_gate", first_run)


def _misdeclared_config(paths: DataPaths) -> Path:
    """The repository's configuration with the tills' order amount declared on the store
    column (``S033``): the first model that reads the orders (a view casts it) fails."""
    folder = paths.home / "config-misdeclared"
    shutil.copytree(REPO_ROOT / "config", folder)
    registry = yaml.safe_load((folder / "sources.yml").read_text(encoding="utf-8"))
    registry["sources"]["pos_orders"]["orders"]["amount"] = "store_id"
    (folder / "sources.yml").write_text(yaml.safe_dump(registry, sort_keys=False),
                                        encoding="utf-8")
    return folder


def _artifacts(paths: DataPaths) -> Path:
    folder = Path(os.environ.get("CDP_TEST_ARTIFACTS") or paths.home / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_failing_dbt_model_is_a_red_build_task_whose_ui_log_names_it(
    airflow: Airflow, published_run: tuple[str, str]
) -> None:
    from playwright.sync_api import sync_playwright

    first_run, first_state = published_run
    if first_state != "success":
        pytest.skip("the first run did not publish (see the first test)")
    for bad in airflow.paths.landing.glob("*/*_bad.csv"):  # the gate test's delivery
        bad.unlink()
    config = _misdeclared_config(airflow.paths)

    run_id = _run_that_fails(airflow, "build", first_run, cdp_config=str(config))
    assert airflow.task_states(run_id)["quality_gate"] == "upstream_failed"

    screenshot = _artifacts(airflow.paths) / "airflow-failed-dbt-model.png"
    page_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            base = f"http://127.0.0.1:{airflow.port}"
            page.goto(f"{base}/dags/{DAG_ID}/runs/{run_id}/tasks/build")
            # Not logged in: the UI sends the browser to the login form, then back.
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", admin_password(airflow.paths))
            page.click("button[type=submit]")
            page.wait_for_url(f"**/runs/{run_id}/tasks/build**")
            # The build task's log, as the UI shows it: a line per dbt node, the failing
            # model's with its status.
            page.get_by_text(": error (", exact=False).first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            page.screenshot(path=str(screenshot), full_page=False)
        finally:
            browser.close()
    failed_lines = [line for line in body.splitlines() if ": error (" in line]
    assert failed_lines and all("dbt model " in line for line in failed_lines), failed_lines
    assert re.search(r"dbt build .*failed: ", body), body[-3000:]  # the task's one message
    # The value dbt could not cast stays in dbt's own log file: in another column it could
    # be an e-mail address.
    assert not re.search(r"'S\d{3}'", body), [line for line in body.splitlines() if "'S" in line]
    assert page_errors == [], page_errors
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")
