"""cdp_identity_training (manual): estimate a new version of the Splink model from the current
raw data and save it under ``models/identity/``; with ``model: auto`` in identity.yml the next
cdp_pipeline run links with it. The pipeline trains on its own only when no model exists;
this DAG is how a team retrains on purpose (new sources, drifted data).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from cdp.orchestration import DEFAULT_ARGS, context_params, run_stage


@dag(
    dag_id="cdp_identity_training",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["cdp", "identity"],
    doc_md=__doc__,
    params=context_params(),
)
def cdp_identity_training() -> None:
    @task
    def retrain_identity() -> dict[str, Any]:
        return run_stage("retrain_identity")

    retrain_identity()


cdp_identity_training_dag = cdp_identity_training()
