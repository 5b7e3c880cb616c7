{#- Event counts per day, event type and event name (custom events keep their own name). -#}

with

events as (

    select * from {{ ref('int_events__sessionized') }}

),

final as (

    select
        event_date,
        event_type,
        event_name,
        count(*) as events,
        count(distinct session_id) as sessions,
        count(distinct visitor_id) as visitors
    from events
    group by event_date, event_type, event_name

)

select * from final
