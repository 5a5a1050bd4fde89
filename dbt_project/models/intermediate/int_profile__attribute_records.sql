-- Every source record with its profile and the attributes the golden record is built from:
-- names as delivered (what a letter should show), country as its ISO 3166-1 alpha-2 code (DE,
-- Germany, D and Deutschland are one country), email and phone normalised, and the address.
-- A profile's address spellings that differ only by a typo in the street (same country,
-- postcode and house number, street names nearly equal) are one address, keyed and spelled as
-- most of its records have it: a single record's "Birkenewg" or "Lübck" never replaces the
-- "Birkenweg, Lübeck" other records confirm (ties: the newest record's spelling). A move to
-- another postcode or house number is another address.
with records as (
    select
        g.profile_id, g.source, g.record_id, g.record_ts,
        r.first_name, r.last_name, r.birth_date, g.email, g.phone,
        r.street, r.house_number, r.postcode, r.city, n.country, r.customer_number,
        n.street as street_key,
        case
            when n.postcode is not null and n.street is not null and n.house_number is not null
            then concat_ws('|', coalesce(n.country, ''), n.postcode, n.street, n.house_number)
        end as own_key,
        concat_ws('|', coalesce(n.country, ''), n.postcode, n.house_number) as place_key
    from {{ ref('fct_identity_graph') }} as g
    join {{ ref('int_identity__records') }} as r using (source, record_id)
    left join {{ ref('int_identity__normalised') }} as n using (source, record_id)
),

support as (
    -- How many records of the profile carry each address key, and since when.
    select profile_id, own_key, place_key, street_key, count(*) as records,
           max(record_ts) as last_seen_at
    from records
    where own_key is not null
    group by all
),

resolved as (
    -- Each key joins the best-supported key at the same place whose street is a spelling
    -- variant of its own (itself, when none is better supported).
    select a.profile_id, a.own_key,
           arg_max(b.own_key, (b.records, b.last_seen_at, b.own_key)) as address_key
    from support as a
    join support as b
        on a.profile_id = b.profile_id and a.place_key = b.place_key
       and (a.own_key = b.own_key
            or jaro_winkler_similarity(a.street_key, b.street_key) >= 0.9)
    group by a.profile_id, a.own_key
),

spellings as (
    select r.profile_id, x.address_key, r.street, r.house_number, r.postcode, r.city,
           count(*) as records, max(r.record_ts) as last_seen_at
    from records as r
    join resolved as x using (profile_id, own_key)
    group by all
),

spelled as (
    select profile_id, address_key,
           arg_max(struct_pack(street, house_number, postcode, city),
                   (records, last_seen_at, street, city)) as spelling
    from spellings
    group by profile_id, address_key
)

select
    r.profile_id,
    r.source,
    r.record_id,
    r.record_ts,
    r.first_name,
    r.last_name,
    r.birth_date,
    r.email,
    r.phone,
    if(s.spelling is null, r.street, s.spelling.street) as street,
    if(s.spelling is null, r.house_number, s.spelling.house_number) as house_number,
    if(s.spelling is null, r.postcode, s.spelling.postcode) as postcode,
    if(s.spelling is null, r.city, s.spelling.city) as city,
    r.country,
    r.customer_number,
    x.address_key
from records as r
left join resolved as x using (profile_id, own_key)
left join spelled as s on s.profile_id = r.profile_id and s.address_key = x.address_key
