"""Record-level identity evidence: every rule / Splink / manual edge and what clustering did.

The only place resolution runs in a build.  Clusters are derived from the merged edges
(int_identity__clusters), so what `cdp explain` shows is exactly what joined the profile.
Splink runs on its own in-memory DuckDB connection (the dbt session is a cursor wrapper
Splink cannot drive); the model version used is chosen per `model` in identity.yml.
"""

import json
import os

from identity.config import load_config
from identity.explain import comparison_weights
from identity.model_store import plan_model, save_versioned
from identity.overrides import load_overrides
from identity.resolve import resolve


def model(dbt, session):
    dbt.config(materialized="table")
    records = dbt.ref("int_identity__records").df()
    config = load_config()
    plan = plan_model(config)
    result = resolve(records, config, overrides=load_overrides(), model_path=plan.path)
    model_name = plan.path.name if plan.path is not None else None
    if plan.save_trained_to is not None and result.model is not None:
        model_name = save_versioned(result.model, plan.save_trained_to).name
    _write_stats(dict(result.stats, model=model_name, model_action=plan.action))
    edges = result.edges
    edges["comparison_weights"] = (comparison_weights(edges["gamma"], result.model)
                                   if result.model is not None else None)
    edges["model"] = edges["edge_type"].map({"splink": model_name})
    return edges.astype({"comparison_weights": "string", "model": "string"})


def _write_stats(stats):
    """Counts and timings only (no PII), next to the run's stage reports."""
    from cdp.pipeline import run_report_dir
    from cdp.settings import data_paths

    folder = run_report_dir(data_paths(), os.environ.get("CDP_RUN_ID", "manual"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "identity.json").write_text(json.dumps(stats, indent=2, default=str))
