"""Record-level identity evidence: every rule / Splink / manual edge and what clustering did.

The only place linkage runs in a build, on the records int_identity__normalised normalised
(not again here).  Clusters are derived from the merged edges (int_identity__clusters), so
what `cdp explain` shows is exactly what joined the profile.  Splink runs on its own in-memory
DuckDB connection (the dbt session is a cursor wrapper Splink cannot drive) and scores only
the pairs of person nodes its memo (identity.state, kept in the build file) has no score for;
``cdp run --full-refresh`` forgets the memo.  Settings, the overrides and the model file to
load come in as the model's config (dbt vars set by cdp.dbt; the training step chose the
file): this model decides nothing about models and writes no files.
"""

from pathlib import Path

from identity.config import IdentityConfig
from identity.explain import comparison_weights
from identity.normalise import as_normalised
from identity.overrides import overrides_from_records
from identity.resolve import link
from identity.state import ScoreMemo, clear_memo, load_memo, save_memo


def model(dbt, session):
    dbt.config(materialized="table")
    config = IdentityConfig.from_dict(dbt.config.get("identity"), "dbt var 'identity'")
    model_file = dbt.config.get("identity_model")
    memo = None
    if model_file and config.use_splink:
        memo = ScoreMemo("", config.match_threshold) \
            if dbt.config.get("identity_full_refresh") \
            else load_memo(session, config.match_threshold)
    norm = as_normalised(dbt.ref("int_identity__normalised").to_arrow_table())
    linkage = link(norm, config,
                   overrides=overrides_from_records(dbt.config.get("identity_overrides")),
                   model_path=model_file, memo=memo)
    if linkage.memo is not None:
        save_memo(session, linkage.memo, dbt.config.get("run_id"))
    else:  # scored afresh in memory (or not at all): no score of an old record may linger
        clear_memo(session)
    edges = linkage.edges
    edges["comparison_weights"] = (comparison_weights(edges["gamma"], linkage.model)
                                   if linkage.model is not None else None)
    edges["model"] = edges["edge_type"].map(
        {"splink": Path(model_file).name if model_file else None})
    return edges.astype({"comparison_weights": "string", "model": "string"})
