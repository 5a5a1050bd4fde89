"""Profiles with persistent ids, derived from the merged edges of int_identity__links.

Resolution does not run again here: components of the merged edges are the clusters.  Ids
are inherited from this model's previous state (read before dbt swaps in the new table) by
largest overlap; ids ever issued (the id history) are never reissued to someone else.  Where
the links model linked only the records a delta touched, only their profiles are derived
again (identity.incremental).
"""

from identity.incremental import build_clusters
from identity.state import table_exists

HISTORY = ("main", "fct_profile_id_history")


def model(dbt, session):
    dbt.config(materialized="table")
    previous = None
    if table_exists(session, f"{dbt.this.schema}.{dbt.this.identifier}"):
        previous = str(dbt.this)
    retired = []
    # downstream of this model, so read (not ref'd): ids it ever recorded stay reserved
    if table_exists(session, ".".join(HISTORY)):
        retired = session.execute(
            f"select old_id from {HISTORY[0]}.{HISTORY[1]} where old_id is not null union "
            f"select new_id from {HISTORY[0]}.{HISTORY[1]}").df().iloc[:, 0].tolist()
    return build_clusters(session, dbt.ref("int_identity__records"),
                          dbt.ref("int_identity__links"), previous, retired,
                          dbt.config.get("run_id"))
