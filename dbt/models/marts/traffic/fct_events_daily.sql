{{ config(**incremental_partition_config('event_date')) }}

{#-
  Event counts per day, event type and event name (custom events keep their
  own name). Incremental, day partitions on event_date: rebuilds the days
  int_events__sessionized rebuilt, from those days' events.
-#}

{%- set plan = partition_plan('event_date', inputs=[{'name': 'int_events__sessionized'}]) %}
{{ partition_plan_marker(plan) }}

with

events as (

    select * from {{ ref('int_events__sessionized') }}
    where {{ plan_filter(plan, 'event_date') }}

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
{{ sort_by_partition(plan) }}
