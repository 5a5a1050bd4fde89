-- Contact preferences per profile: frequency cap and excluded product groups, from every source
-- with the `preferences` role in sources.yml (stg_preferences__saved). The latest saved
-- preference of any record of the profile wins, including a save of the whole form that
-- removed the cap (nulls): a preference centre always shows and stores the whole form.
select
    g.profile_id,
    c.max_contacts,
    c.contact_period,
    c.excluded_product_groups,
    c.saved_at as decided_at,
    c.source as decided_by_source,
    c.record_id as decided_by_record_id
from {{ ref('stg_preferences__saved') }} as c
join {{ ref('fct_identity_graph') }} as g using (source, record_id)
where c.whole_form or c.max_contacts is not null or c.contact_period is not null
   or len(c.excluded_product_groups) > 0
qualify row_number() over (
    partition by g.profile_id
    order by c.saved_at desc, {{ source_precedence('c.source') }}, c.record_id desc
) = 1
