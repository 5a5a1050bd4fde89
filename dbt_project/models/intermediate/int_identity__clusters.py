"""Profiles with persistent ids, derived from the merged edges of int_identity__links.

Resolution does not run again here: components of the merged edges are the clusters.  Ids
are inherited from this model's previous state (read before dbt swaps in the new table) by
largest overlap; ids ever issued (the id history) are never reissued to someone else.
"""

from identity.clustering import components_from_edges
from identity.stable_ids import assign_persistent_ids
from identity.state import table_exists

HISTORY = ("main", "fct_profile_id_history")


def model(dbt, session):
    dbt.config(materialized="table")
    records = dbt.ref("int_identity__records").project("source, record_id").df()
    links = dbt.ref("int_identity__links").filter("status = 'merged'").df()
    records = records.assign(cluster=components_from_edges(records, links))
    previous = None
    if table_exists(session, f"{dbt.this.schema}.{dbt.this.identifier}"):
        previous = session.execute(
            f"select source, record_id, profile_id from {dbt.this}").df()
    retired = []
    # downstream of this model, so read (not ref'd): ids it ever recorded stay reserved
    if table_exists(session, ".".join(HISTORY)):
        retired = session.execute(
            f"select old_id from {HISTORY[0]}.{HISTORY[1]} where old_id is not null union "
            f"select new_id from {HISTORY[0]}.{HISTORY[1]}").df().iloc[:, 0].tolist()
    return assign_persistent_ids(records, previous, retired)
