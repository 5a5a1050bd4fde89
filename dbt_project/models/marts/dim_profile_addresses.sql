-- Every address a profile has had: one row per profile and normalised address, shown as the
-- newest record spelled it. valid_from is the first record carrying it; is_current marks the
-- address the golden record kept.
with addresses as (
    select
        profile_id,
        address_key,
        first(struct_pack(street, house_number, postcode, city, country)
              order by record_ts desc nulls last, {{ source_precedence('source') }}, record_id) as spelled,
        min(record_ts) as valid_from,
        max(record_ts) as last_seen_at,
        count(*) as record_count,
        list_sort(list(distinct source)) as sources
    from {{ ref('int_profile__attribute_records') }}
    where address_key is not null
    group by profile_id, address_key
)

select
    a.profile_id,
    a.address_key,
    a.spelled.street as street,
    a.spelled.house_number as house_number,
    a.spelled.postcode as postcode,
    a.spelled.city as city,
    a.spelled.country as country,
    a.valid_from,
    a.last_seen_at,
    coalesce(a.address_key = p.address_key, false) as is_current,
    a.record_count,
    a.sources
from addresses as a
join {{ ref('dim_profiles') }} as p using (profile_id)
