-- Customer KPIs in long form, one row per KPI and breakdown (definitions: meta.kpis of this
-- model in kpi/_kpi.yml): profiles, contactable share per channel, RFM and churn bands, life
-- events per month, support tickets per class and the complaint rate. Counts only: no
-- profile id, no value of a person.
with profiles as (
    select count(*) as n from {{ ref('dim_profiles') }}
),

contactable as (
    select channel, count(distinct profile_id) filter (where is_contactable) as n
    from {{ ref('dim_profile_consent') }}
    group by channel
),

traits as (
    select
        t.*,
        case
            when t.frequency = 0 then 'no orders'
            when t.recency_days <= 30 then '0-30 days'
            when t.recency_days <= 90 then '31-90 days'
            when t.recency_days <= 180 then '91-180 days'
            else 'over 180 days'
        end as recency_band,
        case
            when t.frequency = 0 then '0 orders'
            when t.frequency = 1 then '1 order'
            when t.frequency <= 3 then '2-3 orders'
            else '4+ orders'
        end as frequency_band,
        case
            when t.frequency = 0 then 'no orders'
            when t.monetary < 50 then 'under 50 EUR'
            when t.monetary < 200 then '50-199 EUR'
            else '200+ EUR'
        end as monetary_band
    from {{ ref('dim_profile_traits') }} as t
),

tickets as (
    select ticket_class, count(*) as n
    from {{ ref('int_support__ticket_classes') }}
    group by ticket_class
),

kpis as (
    select 'profiles' as kpi, 'all' as dimension, 'all' as dimension_value,
           cast(null as date) as period_start, cast(n as double) as value,
           cast(null as double) as denominator
    from profiles

    union all
    select 'contactable_share', 'channel', c.channel, null,
           {{ kpi_rate('c.n', 'p.n') }}, cast(p.n as double)
    from contactable as c, profiles as p

    union all
    select 'profiles_by_recency_band', 'recency_band', recency_band, null, count(*), null
    from traits group by recency_band

    union all
    select 'profiles_by_frequency_band', 'frequency_band', frequency_band, null, count(*), null
    from traits group by frequency_band

    union all
    select 'profiles_by_monetary_band', 'monetary_band', monetary_band, null, count(*), null
    from traits group by monetary_band

    union all
    select 'profiles_by_churn_risk', 'churn_risk', churn_risk, null, count(*), null
    from traits group by churn_risk

    union all
    select 'buyers', 'all', 'all', null, count(*) filter (where frequency > 0), null
    from traits

    union all
    select 'average_order_value', 'all', 'all', null,
           {{ kpi_rate('sum(monetary)', 'sum(frequency)') }}, sum(frequency)
    from traits

    union all
    select 'life_events', 'event', 'moved', cast(date_trunc('month', moved_at) as date),
           count(*), null
    from traits where moved_at is not null group by all

    union all
    select 'life_events', 'event', 'new_baby', cast(date_trunc('month', new_baby_at) as date),
           count(*), null
    from traits where new_baby_at is not null group by all

    union all
    select 'tickets', 'ticket_class', ticket_class, null, n, null
    from tickets

    union all
    select 'complaint_rate', 'all', 'all', null,
           {{ kpi_rate("coalesce(sum(n) filter (where ticket_class = 'complaint'), 0)", 'sum(n)') }},
           sum(n)
    from tickets

    union all
    select 'spam_complaint_profiles', 'all', 'all', null,
           count(*) filter (where spam_complaints > 0), null
    from traits
)

select
    cast(kpi as varchar) as kpi,
    cast(dimension as varchar) as dimension,
    cast(dimension_value as varchar) as dimension_value,
    cast(period_start as date) as period_start,
    cast(value as double) as value,
    cast(denominator as double) as denominator
from kpis
