-- Consent per profile, channel and contact point. The latest explicit statement about a contact
-- point wins, whichever record of the profile made it; on equal timestamps an opt-out wins; a
-- channel-wide statement ('*') covers every contact point of the channel. No recorded opt-in
-- means not contactable: every channel is opt-in. A contact point on the active suppression
-- list is not contactable on any channel, whatever the sources say; only a newer opt-in from
-- the preference centre takes it off that list (see dim_suppression_list).
with contact_points as (
    select distinct profile_id, channel, email as contact_point
    from {{ ref('fct_identity_graph') }}
    cross join (values ('email'), ('online_ads')) as c(channel)
    where email is not null
    union
    select distinct profile_id, channel, phone
    from {{ ref('fct_identity_graph') }}
    cross join (values ('sms'), ('phone'), ('online_ads')) as c(channel)
    where phone is not null
    union
    select profile_id, 'post', 'postal'
    from {{ ref('dim_profiles') }}
    where street is not null and city is not null
),

channels as (
    select p.profile_id, c.channel
    from {{ ref('dim_profiles') }} as p
    cross join {{ channel_rows('c') }}
),

grid as (
    -- Every profile gets a row per channel, with contact point 'none' when it has no address.
    select ch.profile_id, ch.channel, coalesce(cp.contact_point, 'none') as contact_point
    from channels as ch
    left join contact_points as cp using (profile_id, channel)
),

decisions as (
    select
        g.profile_id, g.channel, g.contact_point,
        e.status, e.decided_at, e.source, e.reason
    from grid as g
    left join {{ ref('int_consent__events') }} as e
        on e.profile_id = g.profile_id
       and e.channel = g.channel
       and (e.contact_point = g.contact_point or e.contact_point = '*')
    qualify row_number() over (
        partition by g.profile_id, g.channel, g.contact_point
        order by e.decided_at desc nulls last,
                 case e.status when 'opted_out' then 0 else 1 end,
                 {{ source_precedence('e.source') }}, e.reason
    ) = 1
),

judged as (
    select
        d.*,
        {{ identifier_hash('d.contact_point') }} in (
            select identifier_hash from {{ ref('dim_suppression_list') }}
        ) as is_suppressed
    from decisions as d
)

select
    profile_id,
    channel,
    contact_point,
    coalesce(status, 'unknown') as status,
    coalesce(status = 'opted_in' and contact_point <> 'none' and not is_suppressed, false)
        as is_contactable,
    coalesce(is_suppressed, false) as is_suppressed,
    source as decided_by_source,
    decided_at,
    reason as decided_by_reason
from judged
