{#- Lower is more trusted: the system of record first, self-service second, the rest after. -#}
{% macro source_trust_rank(column) -%}
    case {{ column }}
        when 'crm_customers' then 1
        when 'shop_accounts' then 2
        when 'support_tickets' then 3
        when 'consent_log' then 4
        else 9
    end
{%- endmacro %}
