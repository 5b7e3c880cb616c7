{{ config(**incremental_partition_config('event_date')) }}

{#-
  Daily traffic: events, page views, visitors (from events on that day),
  sessions started, orders and revenue (from sessions that started that day,
  quarantined sessions left out), and the day's peak hour (most events; ties
  go to the earlier hour).

  Incremental, day partitions on event_date: rebuilds the days any of its
  three inputs rebuilt, reading each input through that day list.
-#}

{%- set plan = partition_plan('event_date', inputs=[
      {'name': 'int_events__sessionized'},
      {'name': 'fct_sessions'},
      {'name': 'fct_traffic_hourly'},
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

hourly as (

    select * from {{ ref('fct_traffic_hourly') }}
    where {{ plan_filter(plan, 'event_date') }}

),

event_days as (

    select
        event_date,
        count(*) as events,
        sum({{ flag("event_type = 'page_view'") }}) as page_views,
        sum({{ flag("event_type = 'product_view'") }}) as product_views,
        count(distinct visitor_id) as visitors,
        count(distinct resolved_user_id) as identified_users
    from events
    group by event_date

),

session_days as (

    select
        session_date,
        count(*) as sessions,
        sum(orders) as orders,
        sum(revenue) as revenue,
        sum(duration_seconds) as total_session_seconds,
        sum({{ flag('events = 1') }}) as bounced_sessions
    from sessions
    group by session_date

),

peak_hours as (

    select
        event_date,
        event_hour as peak_hour,
        hour_of_day as peak_hour_of_day,
        events as peak_hour_events
    from hourly
    where is_peak_hour

),

final as (

    select
        event_days.event_date,
        event_days.events,
        event_days.page_views,
        event_days.product_views,
        event_days.visitors,
        event_days.identified_users,
        coalesce(session_days.sessions, 0) as sessions,
        coalesce(session_days.orders, 0) as orders,
        coalesce(session_days.revenue, 0) as revenue,
        {{ safe_ratio('session_days.total_session_seconds', 'session_days.sessions') }} as avg_session_seconds,
        {{ safe_ratio('session_days.bounced_sessions', 'session_days.sessions') }} as bounce_rate,
        peak_hours.peak_hour,
        peak_hours.peak_hour_of_day,
        peak_hours.peak_hour_events
    from event_days
    left join session_days
        on event_days.event_date = session_days.session_date
    left join peak_hours
        on event_days.event_date = peak_hours.event_date

)

select * from final
{{ sort_by_partition(plan) }}
