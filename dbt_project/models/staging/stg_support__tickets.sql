-- Support and call-centre tickets of every source with the `tickets` role in sources.yml
-- (ingest/roles.py), current version per ticket: subject and text for the ticket classifier
-- (free text, may hold personal data; nothing downstream publishes it).
{% call(src) role_union('tickets', 'created_at',
    {'source': 'varchar', 'record_id': 'varchar', 'created_at': 'timestamp',
     'subject': 'varchar', 'text': 'varchar'}) %}
        {{ optional_column(src.subject) }} as subject,
        cast(s.{{ adapter.quote(src.text) }} as varchar) as text
{%- endcall %}
