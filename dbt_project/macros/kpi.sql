{#- A KPI rate: numerator / denominator rounded to 4 places, null when the denominator is 0
    or null (no contact, no profile: no rate, rather than a misleading 0). -#}
{% macro kpi_rate(numerator, denominator) -%}
    cast(round(cast({{ numerator }} as double) / nullif({{ denominator }}, 0), 4) as double)
{%- endmacro %}
