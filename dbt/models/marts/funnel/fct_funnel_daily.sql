{{ config(**incremental_partition_config('funnel_date')) }}

{#-
  The funnel product_view -> add_to_cart -> begin_checkout -> purchase per day.

  Event level (by event_date): counts of each step's events, orders (distinct
  order_id) and revenue; rates are step events over the previous step's
  events (the purchase step counts orders, not purchase lines).

  Session level (by session_date, quarantined sessions left out): a session
  reached a step when its furthest funnel step is that step or a later one
  (a purchase implies the earlier steps), so the counts never grow down the
  funnel. Rates are reached(step) / reached(previous step); conversion_rate
  is purchasing sessions / all sessions.

  Incremental, day partitions on funnel_date: rebuilds the days
  int_events__sessionized or fct_sessions rebuilt, reading both through that
  day list.
-#}

{%- set plan = partition_plan('funnel_date', inputs=[
      {'name': 'int_events__sessionized'},
      {'name': 'fct_sessions'},
  ]) %}
{{ partition_plan_marker(plan) }}

with

events as (

    select * from {{ ref('int_events__sessionized') }}
    where {{ plan_filter(plan, 'event_date') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}
    where not is_quarantined
      and {{ plan_filter(plan, 'session_date') }}

),

event_funnel as (

    select
        event_date,
        sum({{ flag("event_type = 'product_view'") }}) as product_view_events,
        sum({{ flag("event_type = 'add_to_cart'") }}) as add_to_cart_events,
        sum({{ flag("event_type = 'begin_checkout'") }}) as begin_checkout_events,
        sum({{ flag("event_type = 'purchase'") }}) as purchase_events,
        count(distinct case when event_type = 'purchase' then order_id end) as orders,
        coalesce(sum(case when event_type = 'purchase' then revenue end), 0) as revenue
    from events
    group by event_date

),

session_funnel as (

    select
        session_date,
        count(*) as sessions,
        sum({{ flag('furthest_funnel_step_rank >= 1') }}) as sessions_reached_product_view,
        sum({{ flag('furthest_funnel_step_rank >= 2') }}) as sessions_reached_add_to_cart,
        sum({{ flag('furthest_funnel_step_rank >= 3') }}) as sessions_reached_begin_checkout,
        sum({{ flag('furthest_funnel_step_rank >= 4') }}) as sessions_reached_purchase
    from sessions
    group by session_date

),

funnel_dates as (

    select distinct funnel_date
    from (
        select event_date as funnel_date from event_funnel
        union all
        select session_date as funnel_date from session_funnel
    ) as all_dates

),

final as (

    select
        funnel_dates.funnel_date,
        coalesce(event_funnel.product_view_events, 0) as product_view_events,
        coalesce(event_funnel.add_to_cart_events, 0) as add_to_cart_events,
        coalesce(event_funnel.begin_checkout_events, 0) as begin_checkout_events,
        coalesce(event_funnel.purchase_events, 0) as purchase_events,
        coalesce(event_funnel.orders, 0) as orders,
        coalesce(event_funnel.revenue, 0) as revenue,
        {{ safe_ratio('event_funnel.add_to_cart_events', 'event_funnel.product_view_events') }} as view_to_cart_rate,
        {{ safe_ratio('event_funnel.begin_checkout_events', 'event_funnel.add_to_cart_events') }} as cart_to_checkout_rate,
        {{ safe_ratio('event_funnel.orders', 'event_funnel.begin_checkout_events') }} as checkout_to_purchase_rate,
        {{ safe_ratio('event_funnel.orders', 'event_funnel.product_view_events') }} as view_to_purchase_rate,
        coalesce(session_funnel.sessions, 0) as sessions,
        coalesce(session_funnel.sessions_reached_product_view, 0) as sessions_reached_product_view,
        coalesce(session_funnel.sessions_reached_add_to_cart, 0) as sessions_reached_add_to_cart,
        coalesce(session_funnel.sessions_reached_begin_checkout, 0) as sessions_reached_begin_checkout,
        coalesce(session_funnel.sessions_reached_purchase, 0) as sessions_reached_purchase,
        {{ safe_ratio('session_funnel.sessions_reached_add_to_cart', 'session_funnel.sessions_reached_product_view') }} as session_view_to_cart_rate,
        {{ safe_ratio('session_funnel.sessions_reached_begin_checkout', 'session_funnel.sessions_reached_add_to_cart') }} as session_cart_to_checkout_rate,
        {{ safe_ratio('session_funnel.sessions_reached_purchase', 'session_funnel.sessions_reached_begin_checkout') }} as session_checkout_to_purchase_rate,
        {{ safe_ratio('session_funnel.sessions_reached_purchase', 'session_funnel.sessions') }} as session_conversion_rate
    from funnel_dates
    left join event_funnel
        on funnel_dates.funnel_date = event_funnel.event_date
    left join session_funnel
        on funnel_dates.funnel_date = session_funnel.session_date

)

select * from final
{{ sort_by_partition(plan) }}
