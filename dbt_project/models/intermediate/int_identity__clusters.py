"""Identity resolution inside the dbt build: rules + Splink, clustered with over-merge guards.

The dbt-duckdb session is a cursor wrapper Splink cannot use, so identity.resolve runs Splink
on its own in-memory DuckDB connection and hands back one profile per source record.
"""

from identity.config import load_config
from identity.resolve import resolve


def model(dbt, session):
    dbt.config(materialized="table")
    records = dbt.ref("int_identity__records").df()
    result = resolve(records, load_config())
    return result.clusters
