-- Identity evidence, published for `cdp explain`: every edge between two source records with
-- the rule or Splink match weight that proposed it and what clustering decided.
select
    source_l,
    record_id_l,
    source_r,
    record_id_r,
    edge_type,
    rule,
    match_probability,
    match_weight,
    gamma,
    comparison_weights,
    model,
    status
from {{ ref('int_identity__links') }}
