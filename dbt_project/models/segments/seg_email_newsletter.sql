-- Example segment: everyone who may be emailed, with the address they opted in with.
-- A segment is a table in the `segments` schema with one row per profile; exports read it from
-- the published warehouse only.
select
    p.profile_id,
    c.contact_point as email,
    p.first_name as firstname,
    p.last_name as lastname,
    p.city,
    p.country
from {{ ref('dim_profiles') }} as p
join {{ ref('dim_profile_consent') }} as c using (profile_id)
where c.channel = 'email' and c.is_contactable
qualify row_number() over (partition by p.profile_id order by c.decided_at desc, c.contact_point) = 1
