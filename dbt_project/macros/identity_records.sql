{#- Canonical identity fields every registered source is mapped onto (core/vocabulary.py,
    handed over as the var canonical_fields). -#}
{% macro canonical_identity_fields() -%}
    {{ return(var('canonical_fields')) }}
{%- endmacro %}

{#- The source registry as ingest recorded it in raw._source_registry: one dict per source with
    its record key, timestamp column, birth-date format and {field: column} identity mapping.
    Reading it from the warehouse (not from code) is what lets a source added in YAML flow
    through to profiles without touching dbt. -#}
{% macro load_source_registry() -%}
    {%- set sources = {} -%}
    {%- if execute -%}
        {%- set exists = run_query(
            "select count(*) from information_schema.tables "
            ~ "where table_schema = 'raw' and table_name = '_source_registry'") -%}
        {%- if exists.columns[0].values()[0] > 0 -%}
            {%- set rows = run_query(
                "select source, record_key, timestamp_column, birth_date_format, field, column_name "
                ~ "from raw._source_registry order by source, field") -%}
            {%- for row in rows -%}
                {%- if row[0] not in sources -%}
                    {%- do sources.update({row[0]: {"source": row[0], "record_key": row[1],
                        "timestamp_column": row[2], "birth_date_format": row[3], "fields": {}}}) -%}
                {%- endif -%}
                {%- do sources[row[0]]["fields"].update({row[4]: row[5]}) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(sources.values() | list) }}
{%- endmacro %}

{#- One select per registered source projecting its columns onto the canonical fields. -#}
{% macro identity_record_select(src) -%}
    select
        '{{ src.source }}' as source,
        cast({{ adapter.quote(src.record_key) }} as varchar) as record_id,
        {#- A source without a change time is dated by its load time. #}
        {{ source_record_time(src.timestamp_column) }} as record_ts,
    {%- for field in canonical_identity_fields() %}
        {%- set column = src.fields.get(field) %}
        {%- if column is none %}
        cast(null as {{ 'date' if field == 'birth_date' else 'varchar' }}) as {{ field }},
        {%- elif field == 'birth_date' and src.birth_date_format %}
        cast(try_strptime(cast({{ adapter.quote(column) }} as varchar), '{{ src.birth_date_format }}') as date) as birth_date,
        {%- elif field == 'birth_date' %}
        try_cast({{ adapter.quote(column) }} as date) as birth_date,
        {%- else %}
        nullif(trim(cast({{ adapter.quote(column) }} as varchar)), '') as {{ field }},
        {%- endif %}
    {%- endfor %}
        _loaded_at,
        _row_number
    from raw.{{ adapter.quote(src.source) }}
{%- endmacro %}
