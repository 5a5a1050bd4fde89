"""Shared fixtures: an isolated Airflow metadata DB and one real pipeline run on demo data.

Airflow reads its configuration at import, so the environment is set in pytest_configure,
before any test module imports it. Every pipeline test gets its own data directory.

Markers: a test is ``integration`` when it uses the pipeline run (``demo_run`` /
``demo_home_copy``, marked here) or is marked so in its module (servers, dbt builds,
killed subprocesses, anything over ~2 s); every other test is ``unit``, so ``pytest -m unit``
is the fast subset.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from cdp.settings import data_paths
from core.paths import DataPaths

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="cdp-tests-"))


def pytest_configure(config: pytest.Config) -> None:
    from cdp.airflow_env import configure_airflow

    os.environ["CDP_HOME"] = str(_SESSION_DIR / "default-home")
    configure_airflow(DataPaths(_SESSION_DIR / "airflow-session"))


_PIPELINE_FIXTURES = frozenset({"demo_run", "demo_home_copy"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("integration") is None:
            uses_pipeline = _PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ()))
            item.add_marker(pytest.mark.integration if uses_pipeline else pytest.mark.unit)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def fake_1000():
    """fake_1000 (public labelled data) as identity records and truth; skips without it."""
    from tests.public_data import fake_1000_frames

    return fake_1000_frames()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """One full cdp_pipeline run (dag.test) on 1,000 generated people, shared read-only."""
    from cdp.demo.generator import generate
    from cdp.run import run_pipeline

    paths = data_paths(tmp_path_factory.mktemp("demo-home")).ensure()
    generate(paths, people=1_000, seed=7, noise="default")
    summary = run_pipeline(paths)
    return paths, summary


@pytest.fixture
def demo_home_copy(demo_run, tmp_path: Path) -> DataPaths:
    """A private copy of the demo run's data directory, for tests that run the pipeline again."""
    paths, _ = demo_run
    target = tmp_path / "home"
    shutil.copytree(paths.home, target, ignore=shutil.ignore_patterns("airflow"))
    return data_paths(target)
