-- Offer contacts and answers that sources state directly (the `offer_responses` role in
-- sources.yml, ingest/roles.py: a web banner shown or dismissed, a call-centre outcome), in the
-- product's words (delivered, opened, clicked, accepted, rejected, unsubscribed). Rows naming
-- no offer, or an outcome the role does not list, state nothing.
{% call(src) role_union('offer_responses', 'responded_at',
    {'source': 'varchar', 'record_id': 'varchar', 'responded_at': 'timestamp',
     'offer_id': 'varchar', 'product_group': 'varchar', 'channel': 'varchar',
     'response': 'varchar'},
    keep='offer_id is not null and response is not null') %}
        {{ optional_column(src.offer) }} as offer_id,
        {{ optional_column(src.product_group) }} as product_group,
        {%- if src.channel %}
        '{{ src.channel }}' as channel,
        {%- else %}
        {{ mapped(src.channel_column, src.channel_values) }} as channel,
        {%- endif %}
        {{ kind_of(src.outcome, src.outcomes) }} as response
{%- endcall %}
