-- Every e-mail engagement event of every source with the `engagement` role in sources.yml
-- (ingest/roles.py), current version per event id, its kind in the product's words (sent,
-- delivered, opened, clicked, bounced, unsubscribed, complained); events of a kind the role
-- does not list are left out.
{% call(src) role_union('engagement', 'event_at',
    {'source': 'varchar', 'record_id': 'varchar', 'event_at': 'timestamp',
     'event': 'varchar', 'campaign_id': 'varchar', 'offer_id': 'varchar',
     'product_group': 'varchar'},
    keep='event is not null') %}
        {{ kind_of(src.type, src.types) }} as event,
        {{ optional_column(src.campaign) }} as campaign_id,
        {{ optional_column(src.offer) }} as offer_id,
        {{ optional_column(src.product_group) }} as product_group
{%- endcall %}
