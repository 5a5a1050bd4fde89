-- Every explicit consent statement from every source, attached to its profile and contact
-- point (normalised email, E.164 phone, 'postal', or '*' for all contact points of a channel).
-- Statements stay attached to the record that made them, so a merge pools them and a split
-- hands each part back only its own. `reason` says what kind of statement it was; for the
-- consent log it is the origin (preference_centre, web_form, call_centre).
with records as (
    select source, record_id, profile_id, email, phone
    from {{ ref('fct_identity_graph') }}
),

email_engagement as (
    -- An unsubscribe or a spam complaint is an opt-out of that address.
    select r.profile_id, 'email' as channel, r.email as contact_point, 'opted_out' as status,
           e.event_ts as decided_at, 'email_events' as source, e.event_id as record_id,
           e.event_type as reason
    from {{ ref('stg_email__events') }} as e
    join records as r on r.source = 'email_events' and r.record_id = e.event_id
    where e.event_type in ('unsubscribe', 'complaint') and r.email is not null
),

crm_flags as (
    select r.profile_id, f.channel, f.contact_point,
           case when f.flag then 'opted_in' else 'opted_out' end as status,
           c.updated_at as decided_at, 'crm_customers' as source, c.crm_row_id as record_id,
           'crm flag' as reason
    from {{ ref('stg_crm__customers') }} as c
    join records as r on r.source = 'crm_customers' and r.record_id = c.crm_row_id
    cross join lateral (
        values ('email', r.email, c.email_opt_in),
               ('phone', r.phone, c.phone_opt_in),
               ('post', 'postal', c.post_opt_in)
    ) as f(channel, contact_point, flag)
    where f.flag is not null and f.contact_point is not null
),

shop_newsletter as (
    -- Ticking the newsletter box is an opt-in; not ticking it states nothing.
    select r.profile_id, 'email' as channel, r.email as contact_point, 'opted_in' as status,
           a.updated_at as decided_at, 'shop_accounts' as source, a.account_id as record_id,
           'newsletter sign-up' as reason
    from {{ ref('stg_shop__accounts') }} as a
    join records as r on r.source = 'shop_accounts' and r.record_id = a.account_id
    where a.newsletter_opt_in and r.email is not null
),

preference_centre as (
    -- A change naming no contact point of its channel (only a customer number, say) is about
    -- the channel as a whole: '*'.
    select r.profile_id, c.channel,
           coalesce(case
               when c.channel in ('sms', 'phone') then r.phone
               when c.channel = 'post' then 'postal'
               when c.channel = 'online_ads' then coalesce(r.email, r.phone)
               else r.email
           end, '*') as contact_point,
           case c.action when 'opt_in' then 'opted_in' else 'opted_out' end as status,
           c.changed_at as decided_at, 'consent_log' as source, c.change_id as record_id,
           c.origin as reason
    from {{ ref('stg_consent__changes') }} as c
    join records as r on r.source = 'consent_log' and r.record_id = c.change_id
    where c.action in ('opt_in', 'opt_out')
),

do_not_contact as (
    -- "Do not contact" noted by the call centre: opt-out of every channel and contact point.
    select r.profile_id, ch.channel, '*' as contact_point, 'opted_out' as status,
           t.created_at as decided_at, 'support_tickets' as source, t.ticket_id as record_id,
           'do not contact' as reason
    from {{ ref('stg_support__tickets') }} as t
    join records as r on r.source = 'support_tickets' and r.record_id = t.ticket_id
    cross join {{ channel_rows('ch') }}
    where t.do_not_contact
)

select * from email_engagement
union all select * from crm_flags
union all select * from shop_newsletter
union all select * from preference_centre
union all select * from do_not_contact
