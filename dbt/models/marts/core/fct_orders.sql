{{ config(**incremental_partition_config('order_date')) }}

{#-
  One row per order. An order is the set of purchase events sharing an
  order_id; its revenue is the sum of their line revenue (the raw contract:
  revenue is additive across purchase events).

  Incremental, day partitions on order_date (the day of the order's first
  purchase event): rebuilds the days int_events__sessionized rebuilt, from
  the purchase events of those days and the var session_lookback_days days
  on each side (an order's lines can fall on both sides of midnight).
-#}

{%- set lookback = var('session_lookback_days', 1) | int %}
{%- set plan = partition_plan('order_date', inputs=[{'name': 'int_events__sessionized'}]) %}
{{ partition_plan_marker(plan) }}

with

purchase_events as (

    select * from {{ ref('int_events__sessionized') }}
    where event_type = 'purchase'
      and {{ plan_filter(plan, 'event_date', before=lookback, after=lookback) }}

),

orders as (

    select
        order_id,
        min(event_at) as ordered_at,
        min(session_id) as session_id,
        min(visitor_id) as visitor_id,
        count(distinct product_id) as products,
        sum({{ flag('product_id is not null') }}) as order_lines,
        coalesce(sum(case when product_id is not null then coalesce(quantity, 1) end), 0) as units,
        coalesce(sum(revenue), 0) as revenue,
        max(currency) as currency
    from purchase_events
    group by order_id

),

final as (

    select
        order_id,
        ordered_at,
        cast(ordered_at as date) as order_date,
        session_id,
        visitor_id,
        products,
        order_lines,
        units,
        revenue,
        currency
    from orders
    where {{ plan_filter(plan, 'cast(ordered_at as date)') }}

)

select * from final
{{ sort_by_partition(plan) }}
