-- Every offer a profile was shown and what came of it, across email, web, tills and the call
-- centre: the history cross-channel cooldowns read ("declined on the phone yesterday, so no
-- email today"). Call-centre tickets carry no product group; it comes from the offer itself as
-- the other channels report it.
with offers as (
    select offer_id, mode(product_group) as product_group
    from {{ ref('int_offer__responses') }}
    where product_group is not null
    group by offer_id
)

select
    g.profile_id,
    r.offer_id,
    coalesce(r.product_group, o.product_group) as product_group,
    r.channel,
    r.response,
    r.responded_at,
    r.source,
    r.record_id
from {{ ref('int_offer__responses') }} as r
join {{ ref('fct_identity_graph') }} as g using (source, record_id)
left join offers as o using (offer_id)
