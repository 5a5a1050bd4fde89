"""Record-level identity evidence: every rule / Splink / manual edge and what clustering did.

The only place linkage runs in a build, on the records int_identity__normalised normalised
(not again here).  Clusters are derived from the merged edges (int_identity__clusters), so
what `cdp explain` shows is exactly what joined the profile.  Splink runs on its own in-memory
DuckDB connection (the dbt session is a cursor wrapper Splink cannot drive) and scores only
the pairs of person nodes its memo (identity.state, kept in the build file) has no score for;
rules and clustering run again only on the candidate components the changed records touch,
every other edge comes from this model's previous table (identity.incremental).
``cdp run --full-refresh`` forgets both.  Settings, the overrides and the model file to
load come in as the model's config (dbt vars set by cdp.dbt; the training step chose the
file): this model decides nothing about models and writes no files.
"""

import pyarrow.compute as pc

from identity.config import IdentityConfig
from identity.incremental import build_links, clear_link_state, link_fingerprint
from identity.normalise import as_normalised
from identity.overrides import overrides_from_records
from identity.state import (
    RUN_COLUMN,
    VERSION_COLUMN,
    ScoreMemo,
    clear_memo,
    load_memo,
    save_memo,
    table_exists,
)


def model(dbt, session):
    dbt.config(materialized="table")
    config = IdentityConfig.from_dict(dbt.config.get("identity"), "dbt var 'identity'")
    model_file = dbt.config.get("identity_model") or None
    full_refresh = bool(dbt.config.get("identity_full_refresh"))
    memo = None
    if model_file and config.use_splink:
        memo = ScoreMemo("", config.match_threshold) if full_refresh \
            else load_memo(session, config.match_threshold)
    if full_refresh:
        clear_link_state(session)
    table = dbt.ref("int_identity__normalised").to_arrow_table()
    run_id = dbt.config.get("run_id")
    # normalised in this run: a record's values may change under the same version (a birth
    # date believed from today on), so these count as changed
    renormalised = pc.equal(table.column(RUN_COLUMN), run_id).fill_null(False).to_numpy()
    overrides = dbt.config.get("identity_overrides")
    this = f"{dbt.this.schema}.{dbt.this.identifier}"
    # a model trained in memory each run may differ from the last: nothing is re-used then
    reusable = not full_refresh and (model_file or not config.use_splink) \
        and table_exists(session, this)
    built = build_links(session, as_normalised(table), table.column(VERSION_COLUMN), config,
                        overrides=overrides_from_records(overrides),
                        fingerprint=link_fingerprint(config, overrides, model_file),
                        model_path=model_file, memo=memo,
                        previous_table=str(dbt.this) if reusable else None,
                        run_id=run_id, renormalised=renormalised)
    if built.linkage.memo is not None:
        save_memo(session, built.linkage.memo, run_id)
    else:  # scored afresh in memory (or not at all): no score of an old record may linger
        clear_memo(session)
    return built.relation
