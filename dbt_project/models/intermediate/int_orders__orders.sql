-- Every order of every source with the `orders` role in sources.yml (ingest/roles.py), current
-- version per order id: what RFM, lifetime value and offer redemptions are computed from. No
-- source is named here; the runner hands the declarations over as the var order_sources.
{%- set sources = var('order_sources') %}
{%- if sources | length == 0 %}
select cast(null as varchar) as source, cast(null as varchar) as record_id,
       cast(null as timestamp) as ordered_at, cast(null as double) as amount,
       cast(null as varchar) as product_group, cast(null as varchar) as offer_id,
       cast(null as varchar) as channel
where false
{%- else %}
{%- for src in sources %}
select
    '{{ src.source }}' as source,
    cast({{ adapter.quote(src.record_key) }} as varchar) as record_id,
    {{ source_record_time(src.timestamp) }} as ordered_at,
    cast({{ adapter.quote(src.amount) }} as double) as amount,
    {{ 'cast(' ~ adapter.quote(src.product_group) ~ ' as varchar)' if src.product_group else 'cast(null as varchar)' }} as product_group,
    {{ "nullif(trim(cast(" ~ adapter.quote(src.offer) ~ " as varchar)), '')" if src.offer else 'cast(null as varchar)' }} as offer_id,
    '{{ src.channel }}' as channel
from ({{ current_source_rows(src.source, src.record_key, src.timestamp) }})
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{%- endif %}
