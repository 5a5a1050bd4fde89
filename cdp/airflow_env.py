"""Airflow settings for running the DAG embedded (``cdp run``, tests) or under the UI.

Airflow reads its configuration when first imported, so this must run before any
``import airflow``. The repository's ``airflow.cfg`` holds the static settings; what depends
on the data directory (metadata DB, logs) is set here through environment variables.
"""

from __future__ import annotations

import os

from cdp.settings import REPO_ROOT
from core.paths import DataPaths


def configure_airflow(paths: DataPaths) -> None:
    airflow_dir = paths.home / "airflow"
    airflow_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW_HOME", str(REPO_ROOT))
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{airflow_dir / 'airflow.db'}"
    os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(airflow_dir / "logs")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")


def ensure_metadata_db(paths: DataPaths) -> None:
    """Create or migrate Airflow's SQLite metadata DB for this data directory (idempotent)."""
    configure_airflow(paths)
    from airflow.utils.db import upgradedb

    upgradedb()
