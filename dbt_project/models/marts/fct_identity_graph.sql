-- The identity graph: every source record with the persistent profile it belongs to and the
-- normalised identifiers it carries (one row per source record). Sensitive identifiers (the
-- var hashed_fields, core/vocabulary.py: national_id) are published only as
-- <field>_sha256 = SHA-256 of '<field>:<normalised value>' (core.vocabulary.identifier_hash),
-- so a lookup by the hash finds the profile and the number is not in clear text (unkeyed:
-- pseudonymised, not anonymous; see core.vocabulary.HASHED_FIELDS).
select
    c.profile_id,
    r.source,
    r.record_id,
    r.record_ts,
    n.email,
    n.phone,
    r.customer_number,
    r.user_id,
    r.anonymous_id,
    r.loyalty_card
{%- for field in var('hashed_fields') %},
    case when n.{{ field }} is not null
        then sha256('{{ field }}:' || n.{{ field }}) end as {{ field }}_sha256
{%- endfor %}
from {{ ref('int_identity__clusters') }} as c
join {{ ref('int_identity__records') }} as r using (source, record_id)
left join {{ ref('int_identity__normalised') }} as n using (source, record_id)
