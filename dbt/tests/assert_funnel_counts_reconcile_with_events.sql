-- Funnel counts never exceed what they count from: per day, the event-level
-- funnel equals fct_events_daily, each step is at most the day's events, and
-- the session-level funnel never grows down the steps nor exceeds the
-- day's sessions. Returns the offending days.

with

funnel as (

    select * from {{ ref('fct_funnel_daily') }}

),

events_by_type as (

    select
        event_date,
        sum(events) as events,
        sum(case when event_type = 'product_view' then events else 0 end) as product_view_events,
        sum(case when event_type = 'add_to_cart' then events else 0 end) as add_to_cart_events,
        sum(case when event_type = 'begin_checkout' then events else 0 end) as begin_checkout_events,
        sum(case when event_type = 'purchase' then events else 0 end) as purchase_events
    from {{ ref('fct_events_daily') }}
    group by event_date

)

select funnel.funnel_date
from funnel
left join events_by_type
    on funnel.funnel_date = events_by_type.event_date
where funnel.product_view_events <> coalesce(events_by_type.product_view_events, 0)
   or funnel.add_to_cart_events <> coalesce(events_by_type.add_to_cart_events, 0)
   or funnel.begin_checkout_events <> coalesce(events_by_type.begin_checkout_events, 0)
   or funnel.purchase_events <> coalesce(events_by_type.purchase_events, 0)
   or funnel.product_view_events + funnel.add_to_cart_events + funnel.begin_checkout_events
      + funnel.purchase_events > coalesce(events_by_type.events, 0)
   or funnel.orders > funnel.purchase_events
   or funnel.sessions_reached_product_view > funnel.sessions
   or funnel.sessions_reached_add_to_cart > funnel.sessions_reached_product_view
   or funnel.sessions_reached_begin_checkout > funnel.sessions_reached_add_to_cart
   or funnel.sessions_reached_purchase > funnel.sessions_reached_begin_checkout
