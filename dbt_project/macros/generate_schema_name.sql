{#- Use the configured schema name as is (staging, intermediate, main, segments) instead of
    dbt's default "<target>_<custom>", so analysts find marts under `main`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name is not none else target.schema }}
{%- endmacro %}
