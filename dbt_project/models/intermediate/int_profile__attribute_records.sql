-- Every source record with its profile and the attributes the golden record is built from:
-- names and address as delivered (what a letter should show), country as its ISO 3166-1
-- alpha-2 code (DE, Germany, D and Deutschland are one country), email and phone normalised,
-- and a normalised address key so spelling variants of one address count as one address.
select
    g.profile_id,
    g.source,
    g.record_id,
    g.record_ts,
    r.first_name,
    r.last_name,
    r.birth_date,
    g.email,
    g.phone,
    r.street,
    r.house_number,
    r.postcode,
    r.city,
    n.country,
    r.customer_number,
    case
        when n.postcode is not null and n.street is not null and n.house_number is not null
        then concat_ws('|', coalesce(n.country, ''), n.postcode, n.street, n.house_number)
    end as address_key
from {{ ref('fct_identity_graph') }} as g
join {{ ref('int_identity__records') }} as r using (source, record_id)
left join {{ ref('int_identity__normalised') }} as n using (source, record_id)
