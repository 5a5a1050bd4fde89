{#- Golden-record survivorship, driven by config/survivorship.yml (passed in as the
    `survivorship` var by cdp/dbt.py). Each attribute picks one source record per profile by
    its strategy; the record's value, source and time all survive together. -#}

{#- Attributes of the golden record and the columns that survive as one unit. `key` is the
    column whose presence makes a record a candidate (and that most_frequent counts). -#}
{% macro golden_attributes() -%}
    {{ return({
        "first_name": {"columns": ["first_name"], "key": "first_name"},
        "last_name": {"columns": ["last_name"], "key": "last_name"},
        "birth_date": {"columns": ["birth_date"], "key": "birth_date"},
        "email": {"columns": ["email"], "key": "email"},
        "phone": {"columns": ["phone"], "key": "phone"},
        "address": {"columns": ["street", "house_number", "postcode", "city", "country",
                                "address_key"], "key": "address_key"},
        "customer_number": {"columns": ["customer_number"], "key": "customer_number"},
    }) }}
{%- endmacro %}

{#- The configured rule of one attribute; an attribute survivorship.yml leaves out takes the
    newest record holding a value (no source is trusted by name unless configured). -#}
{% macro survivorship_rule(attribute) -%}
    {%- set default = {"strategy": "most_recent"} -%}
    {%- set rule = var("survivorship", {}).get(attribute, default) -%}
    {%- if rule.get("strategy") not in ["most_trusted", "most_recent", "most_frequent"] -%}
        {{ exceptions.raise_compiler_error(
            "survivorship." ~ attribute ~ ": unknown strategy " ~ rule.get("strategy")
            ~ " (use most_trusted, most_recent or most_frequent)") }}
    {%- endif -%}
    {{ return(rule) }}
{%- endmacro %}

{#- Position of `source_column` in an ordered source list (unlisted sources last). -#}
{#- (source_precedence, in latest_per_key.sql, is the registry's own order.) -#}
{% macro source_position(source_column, sources) -%}
    case {{ source_column }}
    {%- for name in sources %} when '{{ name }}' then {{ loop.index }}{% endfor %}
        else {{ sources | length + 1 }}
    end
{%- endmacro %}

{#- Window columns most_frequent needs: how many records of the profile hold the same value. -#}
{% macro survivorship_frequency_columns() -%}
    {%- for attribute, spec in golden_attributes().items() %}
    {%- if survivorship_rule(attribute).strategy == "most_frequent" %}
    , count({{ spec.key }}) over (partition by profile_id, {{ spec.key }}) as {{ attribute }}__frequency
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- Aggregate expression picking the surviving record of one attribute as a struct of its
    columns plus `source` and `at`. Use inside `group by profile_id`. -#}
{% macro survive(attribute) -%}
    {%- set spec = golden_attributes()[attribute] -%}
    {%- set rule = survivorship_rule(attribute) -%}
    {%- set sources = rule.get("sources") or [] -%}
    {%- set trust = source_position("source", sources) if sources else "0" -%}
    {%- if rule.strategy == "most_trusted" -%}
        {%- set order = trust ~ ", record_ts desc nulls last" -%}
    {%- elif rule.strategy == "most_recent" -%}
        {%- set order = "record_ts desc nulls last, " ~ trust -%}
    {%- else -%}
        {%- set order = attribute ~ "__frequency desc, record_ts desc nulls last, " ~ trust -%}
    {%- endif -%}
    first(struct_pack(
        {%- for column in spec.columns %}{{ column }} := {{ column }}, {% endfor -%}
        source := source, at := record_ts
    ) order by {{ order }}, {{ source_precedence("source") }}, record_id)
    filter (where {{ spec.key }} is not null
        {%- if sources and rule.strategy != "most_trusted" %} and source in ('{{ sources | join("', '") }}'){% endif %})
{%- endmacro %}
