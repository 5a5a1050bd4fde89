-- Every run's KPI snapshot, appended (definitions: kpi/_kpi.yml): the long-form KPIs of
-- fct_kpi_customers and fct_kpi_identity_quality as they are, the campaign funnel summed
-- per channel (and over all channels) across offers and weeks, its rates recomputed on those
-- sums, and per segment its newest export's candidates, written, joined and left. Keyed by run: a run's rows are replaced when the same run builds again, never those
-- of other runs; a full refresh keeps them (full_refresh=false), so the trends survive
-- rebuilds and every publication carries the whole history.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='run_id',
          on_schema_change='fail', full_refresh=false) }}

with funnel as (
    select
        coalesce(channel, 'all') as channel,
        sum(delivered) as delivered,
        sum(opened) as opened,
        sum(clicked) as clicked,
        sum(accepted) as accepted,
        sum(rejected) as rejected,
        sum(unsubscribed) as unsubscribed,
        sum(complaints) as complaints,
        round(sum(attributed_revenue), 2) as attributed_revenue  -- summation order: no noise
    from {{ ref('fct_kpi_campaign_funnel') }}
    group by rollup (channel)
),

funnel_long as (
    select 'campaigns' as area, kpi, 'channel' as dimension, channel as dimension_value,
           cast(null as date) as period_start, value
    from funnel
    unpivot (value for kpi in (delivered, opened, clicked, accepted, rejected, unsubscribed,
                               complaints, attributed_revenue))
    union all
    select 'campaigns', kpi, 'channel', channel, null, value
    from (
        select
            channel,
            {{ kpi_rate('opened', 'delivered') }} as open_rate,
            {{ kpi_rate('clicked', 'delivered') }} as click_rate,
            {{ kpi_rate('accepted', 'delivered') }} as acceptance_rate,
            {{ kpi_rate('unsubscribed', 'delivered') }} as unsubscribe_rate,
            {{ kpi_rate('complaints', 'delivered') }} as complaint_rate
        from funnel
    )
    unpivot include nulls (value for kpi in (open_rate, click_rate, acceptance_rate,
                                             unsubscribe_rate, complaint_rate))
),

latest_exports as (
    -- each segment's newest export known to this build
    select *
    from {{ ref('fct_kpi_activation') }}
    where dimension = 'all'
    qualify dense_rank() over (partition by segment order by exported_at desc,
                                                             export_run_id desc) = 1
),

snapshot as (
    select area, kpi, dimension, dimension_value, period_start, cast(value as double) as value
    from funnel_long
    union all
    select 'activation', kpi, 'segment', segment, null, value
    from latest_exports
    union all
    select 'customers', kpi, dimension, dimension_value, period_start, value
    from {{ ref('fct_kpi_customers') }}
    union all
    select 'identity_quality', kpi, dimension, dimension_value, null, value
    from {{ ref('fct_kpi_identity_quality') }}
)

select
    cast('{{ env_var("CDP_RUN_ID") | replace("'", "''") }}' as varchar) as run_id,
    cast('{{ env_var("CDP_AS_OF") }}' as timestamp) as as_of,
    cast(current_timestamp as timestamp) as snapshot_at,
    cast(area as varchar) as area,
    cast(kpi as varchar) as kpi,
    cast(dimension as varchar) as dimension,
    cast(dimension_value as varchar) as dimension_value,
    cast(period_start as date) as period_start,
    cast(value as double) as value
from snapshot
