-- The identity graph: every source record with the persistent profile it belongs to and the
-- normalised identifiers it carries (one row per source record).
select
    c.profile_id,
    r.source,
    r.record_id,
    r.record_ts,
    n.email,
    n.phone,
    r.customer_number,
    r.user_id,
    r.anonymous_id,
    r.loyalty_card
from {{ ref('int_identity__clusters') }} as c
join {{ ref('int_identity__records') }} as r using (source, record_id)
left join {{ ref('int_identity__normalised') }} as n using (source, record_id)
