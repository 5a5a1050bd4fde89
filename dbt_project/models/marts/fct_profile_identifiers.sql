-- Every identifier a profile holds (normalised), with when it was first and last seen and in
-- how many source records: the lookup table for "which profile is this email / card / cookie".
-- A national id is listed only by its hash (identifier_type national_id_sha256).
with identifiers as (
    unpivot {{ ref('fct_identity_graph') }}
    on email, phone, customer_number, user_id, anonymous_id, loyalty_card
    {%- for field in var('hashed_fields') %}, {{ field }}_sha256{% endfor %}
    into name identifier_type value identifier_value
)

select
    profile_id,
    identifier_type,
    identifier_value,
    min(record_ts) as first_seen_at,
    max(record_ts) as last_seen_at,
    count(*) as record_count
from identifiers
group by profile_id, identifier_type, identifier_value
