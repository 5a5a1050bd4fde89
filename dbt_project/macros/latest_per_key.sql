{#- Which row of a record key is its current version: the record's own change time first, so a
    replayed old export stays history and never becomes current; load order (file, then row)
    only breaks ties. Rows without a change time rank last. The one rule every model that picks
    "the current version" uses (ingest's raw.<source>__latest view mirrors it). -#}
{% macro current_version_order(timestamp=none) -%}
    {%- if timestamp %}{{ timestamp }} desc nulls last, {% endif -%}
    _loaded_at desc, _row_number desc
{%- endmacro %}

{#- Raw tables are append-only: every version of a record stays. Staging keeps the current one. -#}
{% macro latest_per_key(relation, key, timestamp=none) -%}
    select * from {{ relation }}
    qualify row_number() over (
        partition by {{ key }} order by {{ current_version_order(timestamp) }}
    ) = 1
{%- endmacro %}

{#- When a registered source's record happened: its timestamp column, or (a source without
    one) its load time. `alias` qualifies the column. -#}
{% macro source_record_time(timestamp_column, alias=none) -%}
    {%- set prefix = alias ~ '.' if alias else '' -%}
    cast({{ prefix ~ (adapter.quote(timestamp_column) if timestamp_column else '_loaded_at') }} as timestamp)
{%- endmacro %}

{#- The current version of every record of a registered source's raw table, read as the dbt
    source('raw', <name>) (every source in sources.yml is one: cdp/dbt_sources.py), so the
    model calling this has the source in its lineage. -#}
{% macro current_source_rows(source_name, record_key, timestamp_column=none) -%}
    {{ latest_per_key(source('raw', source_name), adapter.quote(record_key),
                      adapter.quote(timestamp_column) if timestamp_column else none) }}
{%- endmacro %}

{#- Ties between records of different sources (the same moment, the same value) are broken by
    the order the sources are declared in sources.yml, earliest first - never by their names,
    so renaming a source changes no output. -#}
{% macro source_precedence(source_column) -%}
    case {{ source_column }}
    {%- for table in var('registry_sources') %} when '{{ table.name }}' then {{ loop.index }}{% endfor %}
        else {{ var('registry_sources') | length + 1 }}
    end
{%- endmacro %}
