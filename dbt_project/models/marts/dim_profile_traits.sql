-- Behavioural traits per profile, as of the run's clock: var `as_of` (naive UTC, the DAG run's
-- as_of param or data interval end, `cdp run --as-of`), never the newest record in the data,
-- so a row dated ahead cannot age everyone and rebuilding old data gives the same answers:
--   RFM from the orders of every source with the orders role (stg_orders__orders):
--     recency_days since the last order, frequency = orders,
--     monetary = total amount (EUR).
--   churn_score in [0, 1] = 0.7 * recency risk + 0.3 * experience risk, where
--     recency risk = min(days since the last order / 180, 1), for profiles without orders
--     the days since their last record of any kind (a web-only visitor is not a lost buyer), and
--     experience risk = min(0.25 * complaint tickets + 0.5 * spam complaints
--                           + 0.25 * email unsubscribes, 1);
--     band: low < 0.35 <= medium < 0.65 <= high.
--   lifetime_value = average order value * orders per year * 3 years
--     * (1 - churn_score); orders per year = frequency * 365 / max(days since the first
--     order, 90), so a brand-new customer's first order is not extrapolated into dozens.
--   moved_at: when the current address was first seen, if the profile had an older one.
--   new_baby_at: first purchase in product group 'baby'.
--   ticket counts per class from the ticket classifier (int_support__ticket_classes).
with as_of as (
    select cast('{{ env_var("CDP_AS_OF") }}' as timestamp) as as_of
),

orders as (
    select g.profile_id, o.ordered_at as order_ts, o.amount, o.product_group
    from {{ ref('stg_orders__orders') }} as o
    join {{ ref('fct_identity_graph') }} as g using (source, record_id)
),

rfm as (
    select
        profile_id,
        min(order_ts) as first_order_at,
        max(order_ts) as last_order_at,
        count(*) as frequency,
        coalesce(sum(amount), 0) as monetary,
        min(order_ts) filter (where product_group = 'baby') as new_baby_at
    from orders
    group by profile_id
),

tickets as (
    select
        g.profile_id,
        count(*) filter (where c.ticket_class = 'complaint') as complaint_tickets,
        count(*) filter (where c.ticket_class = 'praise') as praise_tickets,
        count(*) filter (where c.ticket_class = 'request') as request_tickets
    from {{ ref('int_support__ticket_classes') }} as c
    join {{ ref('fct_identity_graph') }} as g using (source, record_id)
    group by g.profile_id
),

email_signals as (
    select
        g.profile_id,
        count(*) filter (where e.event = 'complained') as spam_complaints,
        count(*) filter (where e.event = 'unsubscribed') as unsubscribes
    from {{ ref('stg_email__engagement_events') }} as e
    join {{ ref('fct_identity_graph') }} as g using (source, record_id)
    where e.event in ('complained', 'unsubscribed')
    group by g.profile_id
),

moves as (
    select cur.profile_id, cur.valid_from as moved_at
    from {{ ref('dim_profile_addresses') }} as cur
    where cur.is_current and exists (
        select 1 from {{ ref('dim_profile_addresses') }} as old
        where old.profile_id = cur.profile_id and not old.is_current
          and old.valid_from < cur.valid_from
    )
),

scored as (
    select
        p.profile_id,
        a.as_of,
        r.first_order_at,
        r.last_order_at,
        date_diff('day', r.last_order_at, a.as_of) as recency_days,
        coalesce(r.frequency, 0) as frequency,
        round(coalesce(r.monetary, 0), 2) as monetary,
        coalesce(t.complaint_tickets, 0) as complaint_tickets,
        coalesce(t.praise_tickets, 0) as praise_tickets,
        coalesce(t.request_tickets, 0) as request_tickets,
        coalesce(s.spam_complaints, 0) as spam_complaints,
        coalesce(s.unsubscribes, 0) as unsubscribes,
        round(
            0.7 * least(date_diff('day', coalesce(r.last_order_at, p.last_seen_at), a.as_of)
                        / 180.0, 1.0)
            + 0.3 * least(0.25 * coalesce(t.complaint_tickets, 0)
                          + 0.5 * coalesce(s.spam_complaints, 0)
                          + 0.25 * coalesce(s.unsubscribes, 0), 1.0),
            4)::double as churn_score,
        m.moved_at,
        r.new_baby_at
    from {{ ref('dim_profiles') }} as p
    cross join as_of as a
    left join rfm as r using (profile_id)
    left join tickets as t using (profile_id)
    left join email_signals as s using (profile_id)
    left join moves as m using (profile_id)
)

select
    profile_id,
    as_of,
    first_order_at,
    last_order_at,
    recency_days,
    frequency,
    monetary,
    case when frequency > 0 then round(monetary / frequency, 2) end as avg_order_value,
    case when frequency > 0 then round(
        monetary / frequency
        * frequency * 365.0 / greatest(date_diff('day', first_order_at, as_of), 90)
        * 3 * (1 - churn_score), 2)
    else 0.0 end as lifetime_value,
    churn_score,
    case
        when churn_score < 0.35 then 'low'
        when churn_score < 0.65 then 'medium'
        else 'high'
    end as churn_risk,
    complaint_tickets,
    praise_tickets,
    request_tickets,
    spam_complaints,
    unsubscribes,
    moved_at,
    new_baby_at
from scored
