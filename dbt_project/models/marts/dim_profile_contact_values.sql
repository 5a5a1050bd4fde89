-- Matching key and deliverable value, kept apart. Identity resolution links and consent binds
-- by the normalised contact point (`schmidterik@gmail.com`: lower-cased, Gmail dots and
-- plus-tags dropped); a marketing tool must write to the address the customer gave
-- (`Schmidt.Erik@gmail.com`). Per profile and contact point: the value as a source record gave
-- it, surrounding whitespace trimmed, from the most recent record carrying that point (then
-- source and record id, so every build picks the same one).
-- deliverable_value is what exports and the API hand out: an email's given value; a phone's
-- E.164 number, because normalising a phone changes its format, not the number, and the given
-- '0160 29682833' or '(617) 252-4992' is dialable only in the region the normaliser inferred.
with given as (
    select g.profile_id, 'email' as identifier_type, g.email as contact_point,
           r.email as raw_value, g.source, g.record_id, g.record_ts
    from {{ ref('fct_identity_graph') }} as g
    join {{ ref('int_identity__records') }} as r using (source, record_id)
    where g.email is not null
    union all
    select g.profile_id, 'phone', g.phone, r.phone, g.source, g.record_id, g.record_ts
    from {{ ref('fct_identity_graph') }} as g
    join {{ ref('int_identity__records') }} as r using (source, record_id)
    where g.phone is not null
),

latest as (
    select
        profile_id, identifier_type, contact_point, source, record_id, record_ts,
        regexp_replace(raw_value, '^[\s\x{00A0}]+|[\s\x{00A0}]+$', '', 'g') as given_value
    from given
    qualify row_number() over (
        partition by profile_id, identifier_type, contact_point
        order by record_ts desc nulls last, {{ source_precedence('source') }}, record_id desc
    ) = 1
)

select
    profile_id,
    identifier_type,
    contact_point,
    given_value,
    case identifier_type when 'email' then given_value else contact_point end
        as deliverable_value,
    source as given_by_source,
    record_id as given_by_record_id,
    record_ts as given_at
from latest
