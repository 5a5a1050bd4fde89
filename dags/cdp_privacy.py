"""cdp_privacy (manual): forget the person a request file names (GDPR Art. 17, 19), as
``cdp privacy forget --from-csv`` does: landing files, raw, the build, publications and their
archive, exports, reports and task logs; their hashed identifiers stay suppressed, and the
warehouse is rebuilt and published without them.

The identifiers come in a CSV file (``kind,value`` per row; kinds: email, phone,
customer_number, national_id, loyalty_card, profile_id), named by the ``requests_file``
param and deleted when the request completes: values typed into the trigger form would be kept
in Airflow's metadata database with the run's conf, where no erasure reaches. A rerun of a
failed or killed run resumes the request.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from cdp.orchestration import dag_defaults, run_stage


@dag(
    dag_id="cdp_privacy",
    schedule=None,
    **dag_defaults(__doc__, tags=("privacy",), params={
        "requests_file": Param(
            "", type="string", minLength=1, title="Request file",
            description="CSV with the columns kind and value (one identifier per row) on the "
            "machine that runs the tasks; deleted when the request completes."),
    }),
)
def cdp_privacy() -> None:
    @task
    def forget() -> dict[str, Any]:
        return run_stage("forget_requested", get_current_context()["params"]["requests_file"])

    forget()


cdp_privacy_dag = cdp_privacy()
