-- Append-only history of profile id changes, one batch per build: merges (an old id folded
-- into another profile), splits (records of an old id moved to a new profile) and new ids.
-- Derived from int_identity__clusters.previous_profile_id; an unchanged build adds nothing.
{{ config(materialized='incremental', on_schema_change='fail', full_refresh=false) }}

with pairs as (
    select distinct previous_profile_id as old_id, profile_id as new_id
    from {{ ref('int_identity__clusters') }}
    where previous_profile_id is not null
),

fan as (
    select
        old_id,
        new_id,
        count(*) over (partition by new_id) as olds_in_new,
        count(*) over (partition by old_id) as news_of_old
    from pairs
),

changes as (
    select
        old_id,
        new_id,
        case when olds_in_new > 1 then 'merge' else 'split' end as change
    from fan
    where old_id <> new_id
    union all
    select null as old_id, profile_id as new_id, 'new' as change
    from {{ ref('int_identity__clusters') }}
    group by profile_id
    having count(previous_profile_id) = 0
)

select
    cast(old_id as varchar) as old_id,
    cast(new_id as varchar) as new_id,
    cast(change as varchar) as change,
    cast('{{ env_var("CDP_RUN_ID") | replace("'", "''") }}' as varchar) as run_id,
    cast(current_timestamp as timestamp) as changed_at
from changes
