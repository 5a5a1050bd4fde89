-- Consent and preference-centre changes: one explicit opt-in / opt-out per row and channel.
select
    cast(change_id as varchar) as change_id,
    changed_at,
    lower(trim(channel)) as channel,
    lower(trim(action)) as action,
    lower(trim(origin)) as origin,
    try_cast(nullif(trim(max_contacts), '') as integer) as max_contacts,
    nullif(lower(trim(per)), '') as per,
    nullif(trim(excluded_product_groups), '') as excluded_product_groups
from ({{ latest_per_key(source('raw', 'consent_log'), 'change_id', 'changed_at') }})
