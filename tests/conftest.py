"""Shared fixtures: an isolated Airflow metadata DB and one real pipeline run on demo data.

Airflow reads its configuration at import, so the environment is set in pytest_configure,
before any test module imports it. Every pipeline test gets its own data directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from cdp.settings import DataPaths, data_paths

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="cdp-tests-"))


def pytest_configure(config: pytest.Config) -> None:
    from cdp.airflow_env import configure_airflow

    os.environ["CDP_HOME"] = str(_SESSION_DIR / "default-home")
    configure_airflow(DataPaths(_SESSION_DIR / "airflow-session"))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


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
