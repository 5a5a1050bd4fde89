{#- Raw tables are append-only: a record re-delivered in a later file appears again. Staging keeps
    the latest load of each record key. -#}
{% macro latest_per_key(relation, key) -%}
    select * from {{ relation }}
    qualify row_number() over (
        partition by {{ key }} order by _loaded_at desc, _row_number desc
    ) = 1
{%- endmacro %}

{#- Parse the yes/no spellings the sources use into a boolean (null when absent or unknown). -#}
{% macro parse_flag(column) -%}
    case lower(trim(cast({{ column }} as varchar)))
        when 'true' then true when 'ja' then true when 'yes' then true when '1' then true
        when 'false' then false when 'nein' then false when 'no' then false when '0' then false
    end
{%- endmacro %}
