-- Every order of every source with the `orders` role in sources.yml (ingest/roles.py), current
-- version per order id: what RFM, lifetime value and offer redemptions are computed from. No
-- source is named here; the runner hands the declarations over as the var roles.
{%- set sources = var('roles')['orders'] %}
{%- if not sources %}
{{ no_rows({'source': 'varchar', 'record_id': 'varchar', 'ordered_at': 'timestamp',
            'amount': 'double', 'product_group': 'varchar', 'offer_id': 'varchar',
            'channel': 'varchar'}) }}
{%- else %}
{%- for src in sources %}
select
    '{{ src.source }}' as source,
    cast(s.{{ adapter.quote(src.record_key) }} as varchar) as record_id,
    {{ source_record_time(src.timestamp, 's') }} as ordered_at,
    cast(s.{{ adapter.quote(src.amount) }} as double) as amount,
    {{ 'cast(s.' ~ adapter.quote(src.product_group) ~ ' as varchar)' if src.product_group else 'cast(null as varchar)' }} as product_group,
    {{ optional_column(src.offer) }} as offer_id,
    '{{ src.channel }}' as channel
from ({{ current_source_rows(src.source, src.record_key, src.timestamp) }}) as s
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{%- endif %}
