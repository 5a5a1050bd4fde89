-- Email-engagement events, one row per event id (the ESP re-sends some events).
select
    cast(event_id as varchar) as event_id,
    event_ts,
    lower(trim(event_type)) as event_type,
    nullif(trim(campaign_id), '') as campaign_id,
    nullif(trim(offer_id), '') as offer_id,
    nullif(trim(product_group), '') as product_group
from ({{ latest_per_key(source('raw', 'email_events'), 'event_id', 'event_ts') }})
