-- Every offer contact from every channel with its outcome, on one vocabulary:
-- email sent/delivered -> delivered (a send counts only when the ESP reports no delivery or
-- bounce for it), open -> opened, click -> clicked, unsubscribe -> unsubscribed; a coupon
-- redeemed in an order (sources with the orders role) -> accepted; call-centre accepted ->
-- accepted, declined -> rejected; web offer_view -> delivered, offer_dismiss -> rejected.
with email_events as (
    select e.*, g.email as address
    from {{ ref('stg_email__events') }} as e
    join {{ ref('fct_identity_graph') }} as g
        on g.source = 'email_events' and g.record_id = e.event_id
),

settled as (
    -- Mails whose fate the ESP reported: the send itself is then not a delivery of its own.
    select distinct campaign_id, address
    from email_events
    where event_type in ('delivered', 'bounce')
),

email as (
    select 'email_events' as source, e.event_id as record_id, e.offer_id, e.product_group,
           'email' as channel,
           case e.event_type
               when 'sent' then 'delivered' when 'delivered' then 'delivered'
               when 'open' then 'opened' when 'click' then 'clicked'
               when 'unsubscribe' then 'unsubscribed'
           end as response,
           e.event_ts as responded_at
    from email_events as e
    where e.offer_id is not null
      and e.event_type in ('sent', 'delivered', 'open', 'click', 'unsubscribe')
      and not (e.event_type = 'sent' and exists (
          select 1 from settled as s
          where s.campaign_id = e.campaign_id and s.address = e.address
      ))
),

redemptions as (
    -- An order redeeming an offer's coupon accepts the offer (sources with the orders role).
    select o.source, o.record_id, o.offer_id, o.product_group, o.channel, 'accepted',
           o.ordered_at
    from {{ ref('int_orders__orders') }} as o
    where o.offer_id is not null
),

calls as (
    select 'support_tickets', t.ticket_id, t.offer_id, cast(null as varchar), t.channel,
           case t.offer_outcome when 'accepted' then 'accepted' else 'rejected' end,
           t.created_at
    from {{ ref('stg_support__tickets') }} as t
    where t.offer_id is not null and t.offer_outcome in ('accepted', 'declined')
),

web as (
    select 'web_events', w.event_id, w.offer_id, w.product_group, 'web',
           case w.event_type when 'offer_view' then 'delivered' else 'rejected' end,
           w.event_ts
    from {{ ref('stg_web__events') }} as w
    where w.offer_id is not null and w.event_type in ('offer_view', 'offer_dismiss')
)

select * from email
union all select * from redemptions
union all select * from calls
union all select * from web
