-- The golden record: one row per persistent profile. Every attribute survives by the rule
-- configured for it in config/survivorship.yml (most trusted source, most recent or most
-- frequent value) and keeps the source and time of the record it came from. The address
-- survives as one unit.
{%- set attributes = golden_attributes() %}
with records as (
    select *{{ survivorship_frequency_columns() }}
    from {{ ref('int_profile__attribute_records') }}
),

survivors as (
    select
        profile_id,
        {%- for attribute in attributes %}
        {{ survive(attribute) }} as {{ attribute }}__survivor,
        {%- endfor %}
        count(*) as record_count,
        list_sort(list(distinct source)) as sources,
        min(record_ts) as first_seen_at,
        max(record_ts) as last_seen_at
    from records
    group by profile_id
)

select
    profile_id,
    {%- for attribute, spec in attributes.items() %}
    {%- for column in spec.columns %}
    {{ attribute }}__survivor.{{ column }} as {{ column }},
    {%- endfor %}
    {{ attribute }}__survivor.source as {{ attribute }}_source,
    {{ attribute }}__survivor.at as {{ attribute }}_at,
    {%- endfor %}
    record_count,
    sources,
    first_seen_at,
    last_seen_at
from survivors
