-- Contact preferences from the preference centre: frequency cap and excluded product groups.
-- The latest saved preference of any record of the profile wins, including a save that removed
-- the cap (nulls), because the preference centre always shows and stores the whole form.
select
    g.profile_id,
    c.max_contacts,
    c.per as contact_period,
    coalesce(string_split(c.excluded_product_groups, '|'), []::varchar[])
        as excluded_product_groups,
    c.changed_at as decided_at,
    c.change_id as decided_by_record_id
from {{ ref('stg_consent__changes') }} as c
join {{ ref('fct_identity_graph') }} as g
    on g.source = 'consent_log' and g.record_id = c.change_id
where c.origin = 'preference_centre'
   or c.max_contacts is not null or c.per is not null or c.excluded_product_groups is not null
qualify row_number() over (
    partition by g.profile_id order by c.changed_at desc, c.change_id desc
) = 1
