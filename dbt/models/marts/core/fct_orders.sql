{#-
  One row per order. An order is the set of purchase events sharing an
  order_id; its revenue is the sum of their line revenue (the raw contract:
  revenue is additive across purchase events).
-#}

with

purchase_events as (

    select * from {{ ref('int_events__sessionized') }}
    where event_type = 'purchase'

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

)

select * from final
