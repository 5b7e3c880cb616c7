{{ config(tags=['full_history']) }}

-- Revenue and orders agree everywhere: purchase events, orders, sessions,
-- the daily funnel and users. Returns a row when any total differs.

with

event_totals as (
    select
        coalesce(sum(revenue), 0) as revenue,
        count(distinct order_id) as orders
    from {{ ref('int_events__sessionized') }}
    where event_type = 'purchase'
),

order_totals as (
    select coalesce(sum(revenue), 0) as revenue, count(*) as orders
    from {{ ref('fct_orders') }}
),

session_totals as (
    select coalesce(sum(revenue), 0) as revenue
    from {{ ref('fct_sessions') }}
),

funnel_totals as (
    select coalesce(sum(revenue), 0) as revenue, coalesce(sum(orders), 0) as orders
    from {{ ref('fct_funnel_daily') }}
),

quarantined_totals as (
    select coalesce(sum(revenue), 0) as revenue
    from {{ ref('fct_sessions') }}
    where is_quarantined
),

user_totals as (
    select coalesce(sum(revenue), 0) as revenue
    from {{ ref('dim_users') }}
)

select
    event_totals.revenue as event_revenue,
    order_totals.revenue as order_revenue,
    session_totals.revenue as session_revenue,
    funnel_totals.revenue as funnel_revenue,
    user_totals.revenue as user_revenue
from event_totals
cross join order_totals
cross join session_totals
cross join funnel_totals
cross join quarantined_totals
cross join user_totals
where event_totals.revenue <> order_totals.revenue
   or event_totals.revenue <> session_totals.revenue
   or event_totals.revenue <> funnel_totals.revenue
   or event_totals.orders <> order_totals.orders
   or event_totals.orders <> funnel_totals.orders
   or session_totals.revenue - quarantined_totals.revenue <> user_totals.revenue
