{{ config(**incremental_partition_config('event_date')) }}

{#-
  Events, page views, active sessions and visitors per UTC hour, with the
  day's peak hour flagged. Incremental, day partitions on event_date: rebuilds
  the days int_events__sessionized rebuilt, from those days' events.
-#}

{%- set plan = partition_plan('event_date', inputs=[{'name': 'int_events__sessionized'}]) %}
{{ partition_plan_marker(plan) }}

with

events as (

    select * from {{ ref('int_events__sessionized') }}
    where {{ plan_filter(plan, 'event_date') }}

),

hourly as (

    select
        event_date,
        event_hour,
        count(*) as events,
        sum({{ flag("event_type = 'page_view'") }}) as page_views,
        sum({{ flag("event_type = 'product_view'") }}) as product_views,
        sum({{ flag("event_type = 'purchase'") }}) as purchase_events,
        count(distinct session_id) as active_sessions,
        count(distinct visitor_id) as visitors
    from events
    group by event_date, event_hour

),

ranked as (

    select
        *,
        row_number() over (
            partition by event_date
            order by events desc, event_hour
        ) as events_rank_in_day
    from hourly

),

final as (

    select
        event_date,
        event_hour,
        cast(extract(hour from event_hour) as {{ dbt.type_int() }}) as hour_of_day,
        events,
        page_views,
        product_views,
        purchase_events,
        active_sessions,
        visitors,
        events_rank_in_day,
        events_rank_in_day = 1 as is_peak_hour
    from ranked

)

select * from final
{{ sort_by_partition(plan) }}
