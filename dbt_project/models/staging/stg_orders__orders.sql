-- Every order of every source with the `orders` role in sources.yml (ingest/roles.py), current
-- version per order id: what RFM, lifetime value and offer redemptions are computed from. No
-- source is named here; the runner hands the declarations over as the var roles.
{% call(src) role_union('orders', 'ordered_at',
    {'source': 'varchar', 'record_id': 'varchar', 'ordered_at': 'timestamp',
     'amount': 'double', 'product_group': 'varchar', 'offer_id': 'varchar',
     'channel': 'varchar'}) %}
        cast(s.{{ adapter.quote(src.amount) }} as double) as amount,
        {{ optional_column(src.product_group) }} as product_group,
        {{ optional_column(src.offer) }} as offer_id,
        '{{ src.channel }}' as channel
{%- endcall %}
