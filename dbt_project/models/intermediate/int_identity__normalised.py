"""Normalised identity attributes per source record (emails, E.164 phones, folded names).

Runs the identity package's normalisers (phonenumbers cannot run in SQL) once per build, so
linkage, the identity graph and consent all see the same canonical contact points.  Settings
arrive as the model's config (dbt vars set by cdp.dbt), never read from files here.
"""

from identity.config import IdentityConfig
from identity.normalise import normalise_records


def model(dbt, session):
    dbt.config(materialized="table")
    config = IdentityConfig.from_dict(dbt.config.get("identity"), "dbt var 'identity'")
    records = dbt.ref("int_identity__records").df()
    return normalise_records(records, default_region=config.default_region,
                             min_birth_date=config.min_birth_date)
