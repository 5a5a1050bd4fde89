-- Support tickets and offer outcomes from call-centre conversations (their do-not-contact
-- flag is a consent statement: the `consent:` role of support_tickets in sources.yml).
select
    cast(ticket_id as varchar) as ticket_id,
    created_at,
    lower(channel) as channel,
    subject,
    text,
    nullif(trim(offer_id), '') as offer_id,
    nullif(lower(trim(offer_outcome)), '') as offer_outcome
from ({{ latest_per_key(source('raw', 'support_tickets'), 'ticket_id', 'created_at') }})
