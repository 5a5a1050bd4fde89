-- One row per source record of every registered source, projected onto the canonical identity
-- fields. Versions of a record key collapse to the current one (its own change time first,
-- then load order: a replayed old version never wins).
-- Records that carry no identifier at all are kept: each becomes a profile of its own.
{%- set registry = identity_sources() %}
{%- set fields = canonical_identity_fields() %}

with unioned as (
{%- if registry | length == 0 %}
    select
        cast(null as varchar) as source,
        cast(null as varchar) as record_id,
        cast(null as timestamp) as record_ts,
    {%- for field in fields %}
        cast(null as {{ 'date' if field == 'birth_date' else 'smallint' if field.startswith('birth_') else 'varchar' }}) as {{ field }},
    {%- endfor %}
        cast(null as varchar) as birth_date_raw,
        cast(null as timestamp) as _loaded_at,
        cast(null as bigint) as _row_number
    where false
{%- else %}
{%- for src in registry %}
    {{ identity_record_select(src) }}
    {% if not loop.last %}union all{% endif %}
{%- endfor %}
{%- endif %}
)

select
    source,
    record_id,
    record_ts,
    {{ fields | join(',\n    ') }},
    birth_date_raw
from unioned
where record_id is not null
qualify row_number() over (
    partition by source, record_id order by {{ current_version_order('record_ts') }}
) = 1
