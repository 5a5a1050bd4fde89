-- Campaign funnel per offer, channel and ISO week (definitions: kpi/_kpi.yml). Counts are
-- distinct profiles with that outcome of the offer on that channel in that week, from
-- fct_offer_responses (delivered, opened, clicked, accepted, rejected, unsubscribed) and
-- spam complaints from the e-mail engagement events carrying the offer. Rates divide by the
-- row's deliveries. Revenue: for each acceptance, the profile's orders in the offer's product
-- group placed from the offer's latest delivery to that profile at or before the acceptance
-- (the acceptance itself when none was delivered, e.g. a call) up to var
-- kpi_attribution_days days after it; an order counts once per offer, on the earliest
-- acceptance whose window holds it.
{% set window_days = var('kpi_attribution_days', 14) | int %}

with responses as (
    select profile_id, offer_id, product_group, channel, response, responded_at
    from {{ ref('fct_offer_responses') }}
    where responded_at is not null
),

complaints as (
    select g.profile_id, e.offer_id, 'email' as channel, e.event_at as responded_at
    from {{ ref('stg_email__engagement_events') }} as e
    join {{ ref('fct_identity_graph') }} as g using (source, record_id)
    where e.event = 'complained' and e.offer_id is not null and e.event_at is not null
),

offers as (
    -- the offer's product group as its records report it most often
    select offer_id, mode(product_group) as product_group
    from responses
    where product_group is not null
    group by offer_id
),

events as (
    select profile_id, offer_id, channel, response, responded_at from responses
    union all
    select profile_id, offer_id, channel, 'complained', responded_at from complaints
),

acceptances as (
    select
        a.profile_id,
        a.offer_id,
        a.channel,
        a.responded_at,
        coalesce((
            select max(d.responded_at) from responses as d
            where d.profile_id = a.profile_id and d.offer_id = a.offer_id
              and d.response = 'delivered' and d.responded_at <= a.responded_at
        ), a.responded_at) as contact_at
    from responses as a
    where a.response = 'accepted'
),

orders as (
    select g.profile_id, o.source, o.record_id, o.ordered_at, o.amount, o.product_group
    from {{ ref('stg_orders__orders') }} as o
    join {{ ref('fct_identity_graph') }} as g using (source, record_id)
    where o.ordered_at is not null
),

attributed as (
    -- each order once per offer: on the earliest acceptance whose window holds it
    select
        a.offer_id,
        a.channel,
        a.responded_at,
        o.amount,
        row_number() over (partition by a.offer_id, o.source, o.record_id
                           order by a.responded_at, a.channel) as nth
    from acceptances as a
    join offers as f using (offer_id)
    join orders as o
      on o.profile_id = a.profile_id
     and o.product_group = f.product_group
     and o.ordered_at >= a.contact_at
     and o.ordered_at <= a.contact_at + interval ({{ window_days }}) day
),

revenue as (
    select
        offer_id,
        channel,
        cast(date_trunc('week', responded_at) as date) as week_start,
        count(*) as attributed_orders,
        sum(amount) as attributed_revenue
    from attributed
    where nth = 1
    group by all
),

counts as (
    select
        offer_id,
        channel,
        cast(date_trunc('week', responded_at) as date) as week_start,
        count(distinct profile_id) filter (where response = 'delivered') as delivered,
        count(distinct profile_id) filter (where response = 'opened') as opened,
        count(distinct profile_id) filter (where response = 'clicked') as clicked,
        count(distinct profile_id) filter (where response = 'accepted') as accepted,
        count(distinct profile_id) filter (where response = 'rejected') as rejected,
        count(distinct profile_id) filter (where response = 'unsubscribed') as unsubscribed,
        count(distinct profile_id) filter (where response = 'complained') as complaints
    from events
    group by all
)

select
    cast(c.offer_id as varchar) as offer_id,
    cast(f.product_group as varchar) as product_group,
    cast(c.channel as varchar) as channel,
    cast(strftime(c.week_start, '%G-W%V') as varchar) as iso_week,
    c.week_start,
    cast(c.delivered as bigint) as delivered,
    cast(c.opened as bigint) as opened,
    cast(c.clicked as bigint) as clicked,
    cast(c.accepted as bigint) as accepted,
    cast(c.rejected as bigint) as rejected,
    cast(c.unsubscribed as bigint) as unsubscribed,
    cast(c.complaints as bigint) as complaints,
    {{ kpi_rate('c.opened', 'c.delivered') }} as open_rate,
    {{ kpi_rate('c.clicked', 'c.delivered') }} as click_rate,
    {{ kpi_rate('c.clicked', 'c.opened') }} as click_to_open_rate,
    {{ kpi_rate('c.accepted', 'c.delivered') }} as acceptance_rate,
    {{ kpi_rate('c.rejected', 'c.delivered') }} as rejection_rate,
    {{ kpi_rate('c.unsubscribed', 'c.delivered') }} as unsubscribe_rate,
    {{ kpi_rate('c.complaints', 'c.delivered') }} as complaint_rate,
    cast(coalesce(r.attributed_orders, 0) as bigint) as attributed_orders,
    cast(round(coalesce(r.attributed_revenue, 0), 2) as double) as attributed_revenue,
    cast({{ window_days }} as integer) as attribution_days
from counts as c
left join offers as f using (offer_id)
left join revenue as r using (offer_id, channel, week_start)
