{#-
  Category interest and funnel at two levels of the dotted category_code
  hierarchy: 'top' (first segment, e.g. electronics) and 'leaf' (the full
  code, e.g. electronics.smartphone). Product events without a category are
  left out.
-#}

with

product_events as (

    select * from {{ ref('int_events__sessionized') }}
    where product_id is not null
      and category_code is not null

),

leveled as (

    select 'top' as category_level, category_top as category, product_events.*
    from product_events
    union all
    select 'leaf' as category_level, category_code as category, product_events.*
    from product_events

),

aggregated as (

    select
        category_level,
        category,
        count(distinct product_id) as products,
        {{ product_funnel_aggregates() }}
    from leveled
    group by category_level, category

),

final as (

    select
        aggregated.*,
        {{ product_funnel_rates() }},
        rank() over (partition by category_level order by view_sessions desc) as interest_rank,
        rank() over (partition by category_level order by revenue desc) as revenue_rank
    from aggregated

)

select * from final
