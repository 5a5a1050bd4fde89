-- Support and call-centre tickets of every source with the `tickets` role in sources.yml
-- (ingest/roles.py), current version per ticket: subject and text for the ticket classifier
-- (free text, may hold personal data; nothing downstream publishes it).
{%- set sources = var('roles')['tickets'] %}
{%- if not sources %}
{{ no_rows({'source': 'varchar', 'record_id': 'varchar', 'created_at': 'timestamp',
            'subject': 'varchar', 'text': 'varchar'}) }}
{%- else %}
{%- for src in sources %}
select
    '{{ src.source }}' as source,
    cast(s.{{ adapter.quote(src.record_key) }} as varchar) as record_id,
    {{ source_record_time(src.timestamp, 's') }} as created_at,
    {{ 'cast(s.' ~ adapter.quote(src.subject) ~ ' as varchar)' if src.subject else 'cast(null as varchar)' }} as subject,
    cast(s.{{ adapter.quote(src.text) }} as varchar) as text
from ({{ current_source_rows(src.source, src.record_key, src.timestamp) }}) as s
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{%- endif %}
