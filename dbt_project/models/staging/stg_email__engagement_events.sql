-- Every e-mail engagement event of every source with the `engagement` role in sources.yml
-- (ingest/roles.py), current version per event id, its kind in the product's words (sent,
-- delivered, opened, clicked, bounced, unsubscribed, complained); events of a kind the role
-- does not list are left out.
{%- set sources = var('roles')['engagement'] %}
{%- if not sources %}
{{ no_rows({'source': 'varchar', 'record_id': 'varchar', 'event_at': 'timestamp',
            'event': 'varchar', 'campaign_id': 'varchar', 'offer_id': 'varchar',
            'product_group': 'varchar'}) }}
{%- else %}
select * from (
{%- for src in sources %}
    select
        '{{ src.source }}' as source,
        cast(s.{{ adapter.quote(src.record_key) }} as varchar) as record_id,
        {{ source_record_time(src.timestamp, 's') }} as event_at,
        {{ kind_of(src.type, src.types) }} as event,
        {{ optional_column(src.campaign) }} as campaign_id,
        {{ optional_column(src.offer) }} as offer_id,
        {{ optional_column(src.product_group) }} as product_group
    from ({{ current_source_rows(src.source, src.record_key, src.timestamp) }}) as s
    {% if not loop.last %}union all{% endif %}
{%- endfor %}
)
where event is not null
{%- endif %}
