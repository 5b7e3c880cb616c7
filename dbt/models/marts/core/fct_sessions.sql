{{ config(**incremental_partition_config('session_date', cluster_by=['channel', 'device_class'])) }}

{#-
  One row per session (see int_events__sessionized for the session rule).
  A session belongs to the UTC day it started (session_date); midnight does
  not split it. Sessions longer than var max_session_duration_hours are
  quarantined: kept and flagged (is_quarantined), left out of the session
  marts.

  Incremental, day partitions on session_date: rebuilds the days
  int_events__sessionized rebuilt (which already hold the neighbouring days
  a changed session can reach), from their events and the
  var session_lookback_days days after them (a session started on a day
  holds events of the next).
-#}

{%- set lookback = var('session_lookback_days', 1) | int %}
{%- set plan = partition_plan('session_date', inputs=[{'name': 'int_events__sessionized'}]) %}
{{ partition_plan_marker(plan) }}

with

events as (

    select * from {{ ref('int_events__sessionized') }}
    where {{ plan_filter(plan, 'event_date', after=lookback) }}
      and {{ plan_filter(plan, 'session_date') }}

),

session_metrics as (

    select
        session_id,
        min(event_at) as session_start_at,
        max(event_at) as session_end_at,
        count(*) as events,
        sum({{ flag("event_type = 'page_view'") }}) as page_views,
        sum({{ flag("event_type = 'product_view'") }}) as product_views,
        sum({{ flag("event_type = 'add_to_cart'") }}) as add_to_carts,
        sum({{ flag("event_type = 'remove_from_cart'") }}) as cart_removals,
        sum({{ flag("event_type = 'begin_checkout'") }}) as checkouts,
        sum({{ flag("event_type = 'purchase'") }}) as purchase_events,
        sum({{ flag("event_type = 'search'") }}) as searches,
        count(distinct case when event_type = 'purchase' then order_id end) as orders,
        coalesce(sum(case when event_type = 'purchase' then revenue end), 0) as revenue,
        max(funnel_step_rank) as furthest_funnel_step_rank,
        max(event_number_in_session) as last_event_number,
        min(case when page_path is not null then event_number_in_session end) as landing_event_number,
        max(case when page_path is not null then event_number_in_session end) as exit_event_number
    from events
    group by session_id

),

{#- A session's events are numbered in time order (event_number_in_session,
    int_events__sessionized): its first and last event and its landing and
    exit pages are found by number in session_metrics and joined back, which
    costs far less than ranking every event again with windows (they sort
    every row they carry). -#}
first_events as (

    select * from events
    where event_number_in_session = 1

),

last_events as (

    select events.*
    from events
    inner join session_metrics
        on events.session_id = session_metrics.session_id
        and events.event_number_in_session = session_metrics.last_event_number

),

landing_pages as (

    select
        events.session_id,
        events.page_path as landing_page
    from events
    inner join session_metrics
        on events.session_id = session_metrics.session_id
        and events.event_number_in_session = session_metrics.landing_event_number

),

exit_pages as (

    select
        events.session_id,
        events.page_path as exit_page
    from events
    inner join session_metrics
        on events.session_id = session_metrics.session_id
        and events.event_number_in_session = session_metrics.exit_event_number

),

final as (

    select
        session_metrics.session_id,
        first_events.is_client_session_id,
        first_events.device_key,
        first_events.anonymous_id,
        last_events.visitor_id,
        last_events.resolved_user_id as user_id,
        session_metrics.session_start_at,
        session_metrics.session_end_at,
        cast(session_metrics.session_start_at as date) as session_date,
        {{ dbt.datediff('session_metrics.session_start_at', 'session_metrics.session_end_at', 'second') }} as duration_seconds,
        session_metrics.events,
        session_metrics.page_views,
        session_metrics.product_views,
        session_metrics.add_to_carts,
        session_metrics.cart_removals,
        session_metrics.checkouts,
        session_metrics.purchase_events,
        session_metrics.searches,
        session_metrics.orders,
        session_metrics.revenue,
        session_metrics.orders > 0 as has_purchase,
        landing_pages.landing_page,
        exit_pages.exit_page,
        last_events.event_type as last_event_type,
        last_events.event_name as last_event_name,
        session_metrics.furthest_funnel_step_rank,
        {{ funnel_step_name('session_metrics.furthest_funnel_step_rank') }} as furthest_funnel_step,
        {{ channel_grouping('first_events.utm_source', 'first_events.utm_medium', 'first_events.page_referrer') }} as channel,
        first_events.utm_source,
        first_events.utm_medium,
        first_events.utm_campaign,
        first_events.page_referrer as referrer,
        first_events.device_class,
        first_events.platform,
        first_events.browser,
        first_events.os,
        {{ dbt.datediff('session_metrics.session_start_at', 'session_metrics.session_end_at', 'second') }}
            > {{ var('max_session_duration_hours', 24) | int * 3600 }} as is_quarantined
    from session_metrics
    inner join first_events
        on session_metrics.session_id = first_events.session_id
    inner join last_events
        on session_metrics.session_id = last_events.session_id
    left join landing_pages
        on session_metrics.session_id = landing_pages.session_id
    left join exit_pages
        on session_metrics.session_id = exit_pages.session_id

)

select * from final
{{ sort_by_partition(plan) }}
