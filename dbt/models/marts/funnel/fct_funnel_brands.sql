{#- Brand interest and funnel over product events with a brand. -#}

with

product_events as (

    select * from {{ ref('int_events__sessionized') }}
    where product_id is not null
      and brand is not null

),

aggregated as (

    select
        brand,
        count(distinct product_id) as products,
        {{ product_funnel_aggregates() }}
    from product_events
    group by brand

),

final as (

    select
        aggregated.*,
        {{ product_funnel_rates() }},
        rank() over (order by view_sessions desc) as interest_rank,
        rank() over (order by revenue desc) as revenue_rank
    from aggregated

)

select * from final
