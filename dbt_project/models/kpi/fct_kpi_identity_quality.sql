-- Identity and data-quality KPIs in long form, one row per KPI and breakdown (definitions:
-- meta.kpis of this model in kpi/_kpi.yml): records per source, profiles, records and
-- sources per profile, multi-source profiles, identity edges per clustering decision
-- (merged, redundant, refused by which over-merge guard), profile id changes of this run, and
-- rows loaded and quarantined per source (all deliveries, and this run's). Counts only.
with records as (
    select source, count(*) as n from {{ ref('fct_identity_graph') }} group by source
),

profiles as (
    select
        count(*) as n,
        count(*) filter (where len(sources) > 1) as multi_source,
        sum(len(sources)) as source_memberships,
        sum(record_count) as records
    from {{ ref('dim_profiles') }}
),

edges as (
    select status, count(*) as n from {{ ref('fct_identity_links') }} group by status
),

id_changes as (
    select change, count(*) as n
    from {{ ref('fct_profile_id_history') }}
    where run_id = '{{ env_var("CDP_RUN_ID") | replace("'", "''") }}'
    group by change
),

loads as (
    select
        source,
        sum(rows_loaded) as loaded,
        sum(rows_rejected) as rejected,
        sum(rows_loaded) filter (where run_id = '{{ env_var("CDP_RUN_ID") | replace("'", "''") }}')
            as loaded_this_run,
        sum(rows_rejected) filter (where run_id = '{{ env_var("CDP_RUN_ID") | replace("'", "''") }}')
            as rejected_this_run
    from {{ source('ingest', '_load_ledger') }}
    where coalesce(status, 'loaded') = 'loaded'
    group by source
),

kpis as (
    select 'records' as kpi, 'source' as dimension, source as dimension_value,
           cast(n as double) as value, cast(null as double) as denominator
    from records

    union all
    select 'profiles', 'all', 'all', n, null from profiles

    union all
    select 'records_per_profile', 'all', 'all', {{ kpi_rate('records', 'n') }}, n
    from profiles

    union all
    select 'sources_per_profile', 'all', 'all', {{ kpi_rate('source_memberships', 'n') }}, n
    from profiles

    union all
    select 'multi_source_profile_share', 'all', 'all', {{ kpi_rate('multi_source', 'n') }}, n
    from profiles

    union all
    select 'identity_edges', 'status', status, n, null from edges

    union all
    select 'over_merge_refusals', 'all', 'all', coalesce(sum(n), 0), null
    from edges where status like 'refused:%'

    union all
    select 'profile_id_changes', 'change', change, n, null from id_changes

    union all
    select 'rows_loaded', 'source', source, loaded, null from loads

    union all
    select 'rows_quarantined', 'source', source, rejected, null from loads

    union all
    select 'quarantine_rate', 'source', source, {{ kpi_rate('rejected', 'loaded + rejected') }},
           loaded + rejected
    from loads

    union all
    select 'rows_loaded_this_run', 'source', source, coalesce(loaded_this_run, 0), null
    from loads

    union all
    select 'rows_quarantined_this_run', 'source', source, coalesce(rejected_this_run, 0), null
    from loads
)

select
    cast(kpi as varchar) as kpi,
    cast(dimension as varchar) as dimension,
    cast(dimension_value as varchar) as dimension_value,
    cast(value as double) as value,
    cast(denominator as double) as denominator
from kpis
