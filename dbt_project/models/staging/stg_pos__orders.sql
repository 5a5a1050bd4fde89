-- Point-of-sale orders with loyalty card; offer_id is a redeemed coupon.
select
    cast(order_id as varchar) as order_id,
    order_ts,
    store_id,
    amount,
    product_group,
    nullif(trim(offer_id), '') as offer_id
from ({{ latest_per_key(source('raw', 'pos_orders'), 'order_id', 'order_ts') }})
