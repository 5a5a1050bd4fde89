-- Offer contacts and answers that sources state directly (the `offer_responses` role in
-- sources.yml, ingest/roles.py: a web banner shown or dismissed, a call-centre outcome), in the
-- product's words (delivered, opened, clicked, accepted, rejected, unsubscribed). Rows naming
-- no offer, or an outcome the role does not list, state nothing.
{%- set sources = var('roles')['offer_responses'] %}
{%- if not sources %}
{{ no_rows({'source': 'varchar', 'record_id': 'varchar', 'offer_id': 'varchar',
            'product_group': 'varchar', 'channel': 'varchar', 'response': 'varchar',
            'responded_at': 'timestamp'}) }}
{%- else %}
select * from (
{%- for src in sources %}
    select
        '{{ src.source }}' as source,
        cast(s.{{ adapter.quote(src.record_key) }} as varchar) as record_id,
        {{ optional_column(src.offer) }} as offer_id,
        {{ optional_column(src.product_group) }} as product_group,
        {%- if src.channel %}
        '{{ src.channel }}' as channel,
        {%- else %}
        {{ mapped(src.channel_column, src.channel_values) }} as channel,
        {%- endif %}
        {{ kind_of(src.outcome, src.outcomes) }} as response,
        {{ source_record_time(src.timestamp, 's') }} as responded_at
    from ({{ current_source_rows(src.source, src.record_key, src.timestamp) }}) as s
    {% if not loop.last %}union all{% endif %}
{%- endfor %}
)
where offer_id is not null and response is not null
{%- endif %}
