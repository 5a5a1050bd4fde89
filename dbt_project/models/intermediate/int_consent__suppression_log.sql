-- The suppression log: every explicit opt-out of a direct channel (email, sms, phone) keyed by
-- hashed identifier (SHA-256 of the normalised email / E.164 phone). Only ever appended to
-- (incremental, full refresh disabled): once seen, an opt-out stays, whatever later happens to
-- the records that stated it (merges, splits, erasure, re-imports of old exports). An erasure
-- adds the erased person's hashed e-mails and phones on every direct channel.
-- dim_suppression_list derives the active list from it. Which statements suppress is the
-- source's declaration (`suppresses`, false for snapshot flags such as a CRM's 'nein'); which
-- channels suppress is the var suppression_channels (online-ads and postal opt-outs are
-- consent only: an ads opt-out must not cost a person the newsletter they asked for).
{{ config(materialized='incremental', on_schema_change='append_new_columns', full_refresh=false) }}

with opt_outs as (
    select e.channel, e.contact_point, e.reason, e.decided_at, e.source, e.record_id,
           g.email, g.phone
    from {{ ref('int_consent__events') }} as e
    join {{ ref('fct_identity_graph') }} as g using (source, record_id)
    where e.status = 'opted_out' and e.suppresses
      and e.channel in ({{ sql_strings(var('suppression_channels')) }})
),

identifiers as (
    -- A statement about one contact point suppresses that point; a channel-wide one ('*')
    -- suppresses the identifier of that channel the stating record itself carries.
    select channel, contact_point as identifier, reason, decided_at, source, record_id
    from opt_outs
    where contact_point <> '*'
    union
    select * from (
        select channel, {{ channel_contact_point('channel', 'o') }} as identifier, reason,
               decided_at, source, record_id
        from opt_outs as o
        where contact_point = '*'
    )
    where identifier is not null
),

suppressions as (
    select
        {{ identifier_hash('identifier') }} as identifier_hash,
        {{ identifier_type('identifier') }} as identifier_type,
        channel,
        reason,
        decided_at as suppressed_at,
        source,
        record_id,
        cast(current_timestamp as timestamp) as recorded_at
    from identifiers
    union all
    -- An erased person (`cdp privacy forget`) is suppressed on every direct channel for good:
    -- their hashed e-mail and phone are all that is left of them.
    select
        x.identifier_hash,
        x.identifier_type,
        c.channel,
        'erased' as reason,
        x.erased_at as suppressed_at,
        'privacy' as source,
        x.request_id as record_id,
        cast(current_timestamp as timestamp) as recorded_at
    from {{ source('privacy', '_erased_identifiers') }} as x
    cross join (select unnest([{{ sql_strings(var('suppression_channels')) }}]) as channel) as c
    where x.identifier_type in ('email', 'phone')
)

select * from suppressions as s
{%- if is_incremental() %}
where not exists (
    select 1 from {{ this }} as t
    where t.identifier_hash = s.identifier_hash and t.channel = s.channel
      and t.source = s.source and t.record_id = s.record_id
)
{%- endif %}
