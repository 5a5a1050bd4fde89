"""Normalised identity attributes per source record (emails, E.164 phones, folded names).

Runs the identity package's normalisers (phonenumbers cannot run in SQL) on the records whose
version this model has not normalised before; every other row comes from its previous table
(identity.state), so a daily run normalises what changed.  ``cdp run --full-refresh``
normalises everything.  Settings arrive as the model's config (dbt vars set by cdp.dbt),
never read from files here.
"""

from identity.config import IdentityConfig
from identity.state import normalise_incrementally, table_exists


def model(dbt, session):
    dbt.config(materialized="table")
    config = IdentityConfig.from_dict(dbt.config.get("identity"), "dbt var 'identity'")
    previous = None
    if not dbt.config.get("identity_full_refresh") and table_exists(
            session, f"{dbt.this.schema}.{dbt.this.identifier}"):
        previous = str(dbt.this)
    return normalise_incrementally(session, dbt.ref("int_identity__records"), previous,
                                   config, dbt.config.get("run_id")).relation
