{#- Hashed identifier of a normalised email / E.164 phone: SHA-256 hex, the form suppression
    lists and hashed audiences exchange, so a suppression can be kept without the address. -#}
{% macro identifier_hash(column) -%}
    sha256({{ column }})
{%- endmacro %}

{#- email or phone, from the shape of a normalised contact point (E.164 phones start with +). -#}
{% macro identifier_type(column) -%}
    case when {{ column }} like '+%' then 'phone' else 'email' end
{%- endmacro %}
