-- Support tickets; offer outcomes from call-centre conversations and do-not-contact requests.
select
    cast(ticket_id as varchar) as ticket_id,
    created_at,
    lower(channel) as channel,
    subject,
    text,
    nullif(trim(offer_id), '') as offer_id,
    nullif(lower(trim(offer_outcome)), '') as offer_outcome,
    coalesce({{ parse_flag('do_not_contact') }}, false) as do_not_contact
from ({{ latest_per_key(source('raw', 'support_tickets'), 'ticket_id', 'created_at') }})
