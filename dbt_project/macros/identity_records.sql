{#- Canonical identity fields every registered source is mapped onto (core/vocabulary.py,
    handed over as the var canonical_fields). -#}
{% macro canonical_identity_fields() -%}
    {{ return(var('canonical_fields')) }}
{%- endmacro %}

{#- Every registered source that maps identity fields, by name: one dict per source with its
    record key, timestamp column, birth-date format and {field: column} identity mapping, from
    the registry's dbt sources (the var registry_sources, cdp/dbt_sources.py). Known when dbt
    parses, so every source read is a source() in the identity records' lineage; a source added
    in YAML flows through to profiles without touching dbt. -#}
{% macro identity_sources() -%}
    {%- set sources = [] -%}
    {%- for table in var('registry_sources') | sort(attribute='name') -%}
        {%- set meta = table.config.meta -%}
        {%- if meta.identity -%}
            {%- do sources.append({"source": table.name, "record_key": meta.record_key,
                "timestamp": meta.timestamp, "birth_date_format": meta.birth_date_format,
                "identity": meta.identity}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(sources) }}
{%- endmacro %}

{#- One select per registered source projecting its columns onto the canonical fields. A birth
    date split over year / month / day columns is built from them; birth_date_raw keeps the
    mapped birth-date text, whose parts identity resolution reads even where it is no date. -#}
{% macro identity_record_select(src) -%}
    {%- set parts = ['birth_year', 'birth_month', 'birth_day'] %}
    select
        '{{ src.source }}' as source,
        cast({{ adapter.quote(src.record_key) }} as varchar) as record_id,
        {#- A source without a change time is dated by its load time. #}
        {{ source_record_time(src.timestamp) }} as record_ts,
    {%- for field in canonical_identity_fields() %}
        {%- set column = src.identity.get(field) %}
        {%- if field in parts and column is none %}
        cast(null as smallint) as {{ field }},
        {%- elif field in parts %}
        try_cast(nullif(trim(cast({{ adapter.quote(column) }} as varchar)), '') as smallint) as {{ field }},
        {%- elif field == 'birth_date' and column is none and src.identity.get('birth_year') and src.identity.get('birth_month') and src.identity.get('birth_day') %}
        try(make_date({% for part in parts %}try_cast(trim(cast({{ adapter.quote(src.identity.get(part)) }} as varchar)) as bigint){{ ', ' if not loop.last }}{% endfor %})) as birth_date,
        {%- elif column is none %}
        cast(null as {{ 'date' if field == 'birth_date' else 'varchar' }}) as {{ field }},
        {%- elif field == 'birth_date' and src.birth_date_format %}
        cast(try_strptime(cast({{ adapter.quote(column) }} as varchar), '{{ src.birth_date_format | replace("'", "''") }}') as date) as birth_date,
        {%- elif field == 'birth_date' %}
        try_cast({{ adapter.quote(column) }} as date) as birth_date,
        {%- else %}
        nullif(trim(cast({{ adapter.quote(column) }} as varchar)), '') as {{ field }},
        {%- endif %}
    {%- endfor %}
        {%- set raw_date = src.identity.get('birth_date') %}
        {%- if raw_date is none %}
        cast(null as varchar) as birth_date_raw,
        {%- else %}
        nullif(trim(cast({{ adapter.quote(raw_date) }} as varchar)), '') as birth_date_raw,
        {%- endif %}
        _loaded_at,
        _row_number
    from {{ source('raw', src.source) }}
{%- endmacro %}
