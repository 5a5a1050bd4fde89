-- Every offer contact from every channel with its outcome, on one vocabulary (delivered,
-- opened, clicked, accepted, rejected, unsubscribed), from the source roles in sources.yml:
--   e-mail engagement (`engagement`): sent / delivered -> delivered (a send counts only when
--     the ESP reports no delivery or bounce for it), opened, clicked, unsubscribed;
--   orders (`orders`): a redeemed coupon -> accepted, under the role's channel;
--   stated responses (`offer_responses`: web banners, call-centre outcomes) as mapped there.
with engagement as (
    select e.*, g.email as address
    from {{ ref('stg_email__engagement_events') }} as e
    join {{ ref('fct_identity_graph') }} as g using (source, record_id)
),

settled as (
    -- Mails whose fate the ESP reported: the send itself is then not a delivery of its own.
    select distinct campaign_id, address
    from engagement
    where event in ('delivered', 'bounced')
),

email as (
    select e.source, e.record_id, e.offer_id, e.product_group, 'email' as channel,
           case e.event when 'sent' then 'delivered' else e.event end as response,
           e.event_at as responded_at
    from engagement as e
    where e.offer_id is not null
      and e.event in ('sent', 'delivered', 'opened', 'clicked', 'unsubscribed')
      and not (e.event = 'sent' and exists (
          select 1 from settled as s
          where s.campaign_id = e.campaign_id and s.address = e.address
      ))
),

redemptions as (
    select o.source, o.record_id, o.offer_id, o.product_group, o.channel, 'accepted',
           o.ordered_at
    from {{ ref('stg_orders__orders') }} as o
    where o.offer_id is not null
),

stated as (
    select r.source, r.record_id, r.offer_id, r.product_group, r.channel, r.response,
           r.responded_at
    from {{ ref('stg_offer__stated_responses') }} as r
)

select * from email
union all select * from redemptions
union all select * from stated
