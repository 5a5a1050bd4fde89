-- The active suppression list, one row per hashed identifier (SHA-256 hex of the normalised
-- email / E.164 phone): every identifier in the append-only suppression log
-- (int_consent__suppression_log), so suppressions outlive merges, splits, erasure and
-- re-imports, minus those lifted by an explicit opt-in for that identifier made after its
-- latest suppression by a statement declared to lift (`lifts_suppression` in sources.yml: the
-- demo's preference centre). Nothing else lifts a suppression: not a re-imported CRM 'ja',
-- not a web-form sign-up. A listed identifier is not contactable on any
-- channel (dim_profile_consent), the rule exports and the quality gate check.
-- Statements made at the same moment (an unsubscribe and a web-form opt-out) are told apart by
-- the sources' order in sources.yml (source_precedence), reason and channel, so the row shown
-- is the same on every build and under any source names.
with latest as (
    select
        identifier_hash,
        identifier_type,
        arg_max(channel, (suppressed_at, -{{ source_precedence('source') }}, reason, channel)) as channel,
        arg_max(reason, (suppressed_at, -{{ source_precedence('source') }}, reason, channel)) as reason,
        max(suppressed_at) as suppressed_at,
        arg_max(source, (suppressed_at, -{{ source_precedence('source') }}, reason, channel)) as source,
        min(suppressed_at) as first_suppressed_at,
        count(*) as statements
    from {{ ref('int_consent__suppression_log') }}
    group by identifier_hash, identifier_type
),

lifts as (
    select {{ identifier_hash('contact_point') }} as identifier_hash, max(decided_at) as lifted_at
    from {{ ref('int_consent__events') }}
    where lifts_suppression and status = 'opted_in' and contact_point not in ('*', 'postal')
    group by 1
)

select l.*
from latest as l
left join lifts as x using (identifier_hash)
where x.lifted_at is null or x.lifted_at <= l.suppressed_at
