-- Web/app events, one row per event id.
select
    cast(event_id as varchar) as event_id,
    event_ts,
    anonymous_id,
    user_id,
    lower(event_type) as event_type,
    nullif(trim(product_group), '') as product_group,
    nullif(trim(offer_id), '') as offer_id,
    page
from ({{ latest_per_key(source('raw', 'web_events'), 'event_id', 'event_ts') }})
