"""Counts of a finished identity build, read back from the tables it made.

The run report (``identity.json``) is written by the pipeline, not by the dbt models (they
write no files), so its counts come from the built tables themselves: what is reported is
what was published, not what a model said it did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from identity.state import RUN_COLUMN, SCORED_NODES, SCORED_PAIRS, SCORED_RUN, table_exists

COLLAPSE_RULE = "identical_identifiers"  # records folded into their identity node's first

_COUNTS = f"""
select
    (select count(*) from intermediate.int_identity__normalised) as records,
    (select count(*) from intermediate.int_identity__normalised)
      - count(*) filter (where rule = '{COLLAPSE_RULE}') as nodes,
    count(*) filter (where edge_type = 'splink') as splink_edges,
    count(*) filter (where rule = 'must_link') as must_links,
    count(*) filter (where status = 'merged' and rule is distinct from '{COLLAPSE_RULE}')
      as merged_edges,
    (select count(distinct profile_id) from intermediate.int_identity__clusters) as profiles
from intermediate.int_identity__links
"""
_REFUSED = """
select substr(status, 9) as reason, count(*) as edges
from intermediate.int_identity__links where status like 'refused:%'
group by 1 order by 1
"""


# What a run computed rather than took from the identity state (identity.state).
_TOUCHED = f"""
select
    (select count(*) from intermediate.int_identity__normalised
     where {RUN_COLUMN} = $run) as records_normalised,
    (select count(*) from {SCORED_NODES} where {SCORED_RUN} = $run) as person_nodes_scored,
    (select count(*) from {SCORED_NODES}) as person_nodes,
    (select count(*) from {SCORED_PAIRS} where {SCORED_RUN} = $run) as splink_pairs_scored
"""


def build_stats(build_db: Path, run_id: str | None = None) -> dict[str, Any]:
    """Records, identity nodes, Splink / must-link / merged edges, refused edges by reason and
    profiles of the identity tables in ``build_db`` (counts only, no personal data); with
    ``run_id``, also what that run normalised and scored itself (``touched``)."""
    con = duckdb.connect(str(build_db), read_only=True)
    try:
        counts = con.execute(_COUNTS)
        columns = [column[0] for column in counts.description]
        (row,) = counts.fetchall()
        refused = dict(con.sql(_REFUSED).fetchall())
        touched: dict[str, int] = {}
        if run_id is not None and table_exists(con, SCORED_NODES):
            result = con.execute(_TOUCHED, {"run": run_id})
            names = [column[0] for column in result.description]
            touched = {n: int(v) for n, v in zip(names, result.fetchall()[0], strict=True)}
    finally:
        con.close()
    return {**{name: int(value) for name, value in zip(columns, row, strict=True)},
            "refused_edges": {str(k): int(v) for k, v in refused.items()},
            **({"touched": touched} if touched else {})}
