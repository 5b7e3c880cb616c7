{#-
  Per product: event-level funnel (views, carts, cart removals, checkouts,
  purchases, units, revenue), session-level funnel (sessions that viewed,
  carted, purchased the product), rates and rankings (rank() over all
  products: ties share a rank).
-#}

with

product_events as (

    select * from {{ ref('int_events__sessionized') }}
    where product_id is not null

),

latest_attributes as (

    select product_id, category_code, category_top, brand
    from (
        select
            product_id,
            category_code,
            category_top,
            brand,
            row_number() over (
                partition by product_id
                order by event_at desc, event_id desc
            ) as recency
        from product_events
        where category_code is not null or brand is not null
    ) as attributed
    where recency = 1

),

aggregated as (

    select
        product_id,
        {{ product_funnel_aggregates() }}
    from product_events
    group by product_id

),

with_rates as (

    select
        aggregated.*,
        {{ product_funnel_rates() }}
    from aggregated

),

final as (

    select
        with_rates.product_id,
        latest_attributes.category_code,
        latest_attributes.category_top,
        latest_attributes.brand,
        with_rates.product_views,
        with_rates.add_to_carts,
        with_rates.cart_removals,
        with_rates.checkouts,
        with_rates.purchases,
        with_rates.units_sold,
        with_rates.revenue,
        with_rates.viewers,
        with_rates.view_sessions,
        with_rates.cart_sessions,
        with_rates.purchase_sessions,
        with_rates.view_to_cart_rate,
        with_rates.cart_removal_rate,
        with_rates.session_view_to_cart_rate,
        with_rates.session_cart_to_purchase_rate,
        with_rates.conversion_rate,
        rank() over (order by with_rates.revenue desc) as revenue_rank,
        rank() over (order by with_rates.units_sold desc) as units_rank,
        rank() over (order by with_rates.product_views desc) as views_rank,
        rank() over (order by with_rates.add_to_carts desc) as carts_rank,
        rank() over (order by coalesce(with_rates.conversion_rate, 0) desc) as conversion_rank
    from with_rates
    left join latest_attributes
        on with_rates.product_id = latest_attributes.product_id

)

select * from final
