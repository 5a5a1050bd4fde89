-- The golden record: one row per persistent profile. Each attribute survives from the most
-- trusted source that has it (CRM before shop before support before the rest), the most recent
-- record breaking ties.
with records as (
    select
        g.profile_id,
        g.source,
        g.record_ts,
        g.email,
        g.phone,
        r.first_name,
        r.last_name,
        r.birth_date,
        r.street,
        r.house_number,
        r.postcode,
        r.city,
        r.country,
        r.customer_number,
        {{ source_trust_rank('g.source') }} * 1e11 - coalesce(epoch(g.record_ts), 0) as survival_rank
    from {{ ref('fct_identity_graph') }} as g
    join {{ ref('int_identity__records') }} as r using (source, record_id)
)
select
    profile_id,
    {%- for attribute in ['first_name', 'last_name', 'birth_date', 'email', 'phone', 'street',
                          'house_number', 'postcode', 'city', 'country', 'customer_number'] %}
    arg_min({{ attribute }}, survival_rank) filter (where {{ attribute }} is not null) as {{ attribute }},
    {%- endfor %}
    count(*) as record_count,
    list_sort(list(distinct source)) as sources,
    min(record_ts) as first_seen_at,
    max(record_ts) as last_seen_at
from records
group by profile_id
