{#- The product's vocabulary (core/vocabulary.py), handed to dbt as vars by the runner. -#}

{% macro channel_rows(alias) -%}
    {#- One row per contact channel: (values ('email'), ('sms'), ...) as <alias>(channel) -#}
    (values {% for channel in var('channels') %}('{{ channel }}'){{ ", " if not loop.last }}{% endfor %}) as {{ alias }}(channel)
{%- endmacro %}
