"""cdp_identity_training (manual): estimate a new version of the Splink model from the current
raw data and save it under ``models/identity/``; with ``model: auto`` in identity.yml the next
cdp_pipeline run links with it. The pipeline trains on its own only when no model exists;
this DAG is how a team retrains on purpose (new sources, drifted data).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from cdp.orchestration import dag_defaults, run_stage


@dag(
    dag_id="cdp_identity_training",
    schedule=None,
    **dag_defaults(__doc__, tags=("identity",)),
)
def cdp_identity_training() -> None:
    @task
    def retrain_identity() -> dict[str, Any]:
        return run_stage("retrain_identity")

    retrain_identity()


cdp_identity_training_dag = cdp_identity_training()
