{#- Reading a registered source's own codes (source roles, ingest/roles.py): values are
    compared trimmed and lower-cased, and a role's mapping turns the source's words into the
    product's vocabulary. `alias` is the source rows' alias. -#}

{% macro sql_strings(values) -%}
    {%- for value in values -%}'{{ value | replace("'", "''") }}'{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}

{% macro folded(column, alias='s') -%}
    lower(trim(cast({{ alias }}.{{ adapter.quote(column) }} as varchar)))
{%- endmacro %}

{#- The column's folded value through `values` ({own word: ours}); unmapped words as written. -#}
{% macro mapped(column, values, alias='s') -%}
    {%- if values -%}
    case {{ folded(column, alias) }}
    {%- for code, ours in values.items() %}
        when '{{ code | replace("'", "''") }}' then '{{ ours | replace("'", "''") }}'
    {%- endfor %}
        else {{ folded(column, alias) }} end
    {%- else -%}
    {{ folded(column, alias) }}
    {%- endif -%}
{%- endmacro %}

{#- The kind a folded value of `column` means per `kinds` ({kind: [own words]}); null for a
    word listed under no kind. -#}
{% macro kind_of(column, kinds, alias='s') -%}
    case
    {%- for kind, words in kinds.items() if words %}
        when {{ folded(column, alias) }} in ({{ sql_strings(words) }}) then '{{ kind }}'
    {%- endfor %}
    end
{%- endmacro %}

{#- A column a role may leave out, as varchar (null when the role names none). -#}
{% macro optional_column(column, alias='s') -%}
    {%- if column -%}
    nullif(trim(cast({{ alias }}.{{ adapter.quote(column) }} as varchar)), '')
    {%- else -%}
    cast(null as varchar)
    {%- endif -%}
{%- endmacro %}

{#- A role model's result when no source declares the role: no rows, the columns typed
    ({column: type}, in order). -#}
{% macro no_rows(columns) -%}
    select
    {%- for name, type in columns.items() %}
        cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
    where false
{%- endmacro %}

{#- A role model: one select per source declaring `role` (var roles), unioned; each select
    opens with the source's name, its record id and `time_as` (the record's time), then what
    the caller block writes for that source (`{% call(src) role_union(...) %}`), reading the
    source's current rows as `s`. `keep` filters the union. With no source: no rows, typed as
    `columns` ({column: type}, in order). -#}
{% macro role_union(role, time_as, columns, keep=none) -%}
    {%- set sources = var('roles')[role] -%}
    {%- if not sources -%}
{{ no_rows(columns) }}
    {%- else -%}
    {%- if keep %}select * from ({% endif %}
    {%- for src in sources %}
    select
        '{{ src.source }}' as source,
        cast(s.{{ adapter.quote(src.record_key) }} as varchar) as record_id,
        {{ source_record_time(src.timestamp, 's') }} as {{ time_as }},
        {{ caller(src) }}
    from ({{ current_source_rows(src.source, src.record_key, src.timestamp) }}) as s
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
    {%- if keep %}
) where {{ keep }}
    {%- endif %}
    {%- endif %}
{%- endmacro %}
