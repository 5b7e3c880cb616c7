{{ config(**incremental_partition_config('event_date', cluster_by=['event_type', 'session_id'])) }}

{#-
  Valid (and, with var exclude_bots, non-bot) events with identity and session.

  Visitor: the event's own user_id, else the user stitched to its
  anonymous_id (int_identities__stitched), else the anonymous_id.

  Sessions are cut per device (device_key = anonymous_id, else user_id) in
  event_time order. An event starts a new session when
    - it is the device's first event, or
    - more than var session_timeout_minutes (30) passed since the previous event, or
    - it and the previous event both carry a client session_id and they differ.
  Midnight UTC does NOT split a session: a session belongs to the day it
  started (session_date) and may hold events of the next day.
  session_id is the client session_id when it is present and consistent (one
  client id across the session's events, not shared with another derived
  session); otherwise it is '<device_key>-<session start, epoch seconds>'.

  Incremental, day partitions on event_date. A staging day D that changed
  rebuilds D - L .. D + L (L = var session_lookback_days, 1): a changed event
  can extend a session from the day before or merge with the next day's
  events. Those days are sessionized from L more days of staging on each
  side, so sessions that started earlier keep their start and id. When the
  identity map was rebuilt (nightly), the days whose events it attributes
  to another visitor are rebuilt too (reattributed_event_days).
-#}

{%- set timeout_seconds = var('session_timeout_minutes', 30) | int * 60 %}
{%- set lookback = var('session_lookback_days', 1) | int %}
{%- set plan = partition_plan('event_date', inputs=[
      {'name': 'stg_clickstream__events', 'before': lookback, 'after': lookback},
      {'name': 'int_identities__stitched', 'days': false},
  ]) %}
{%- if 'int_identities__stitched' in plan.changed_inputs %}
{%- set plan = plan_with_days(plan, reattributed_event_days(ref('int_identities__stitched'))) %}
{%- endif %}
{{ partition_plan_marker(plan) }}

with

events as {{ inline_cte(plan.mode == 'full') }} (

    {#- read twice (the session cut below, and the wide join at the end): in
        a full build, re-reading staging costs less than buffering it -#}
    select * from {{ ref('stg_clickstream__events') }}
    where is_valid
      {% if var('exclude_bots') %}and not is_bot{% endif %}
      and {{ plan_filter(plan, 'event_date', before=lookback, after=lookback) }}

),

identities as (

    select * from {{ ref('int_identities__stitched') }}

),

identified as (

    {#- Sessions are cut on the few columns that decide them: the windows
        below sort every row they carry, so the wide event rows join back
        only at the end (final). -#}
    select
        event_id,
        event_at,
        received_at,
        client_session_id,
        coalesce(anonymous_id, user_id) as device_key
    from events

),

with_previous as (

    select
        *,
        lag(event_at) over (
            partition by device_key
            order by event_at, received_at, event_id
        ) as previous_event_at,
        lag(client_session_id) over (
            partition by device_key
            order by event_at, received_at, event_id
        ) as previous_client_session_id,
        {#- numbered in the same sort as the lags: a session is a run of its
            device's events, so an event's number in its session is its
            device number less the session's first, with no sort of its own -#}
        row_number() over (
            partition by device_key
            order by event_at, received_at, event_id
        ) as device_event_number
    from identified

),

session_starts as (

    select
        *,
        case
            when previous_event_at is null then 1
            when {{ dbt.datediff('previous_event_at', 'event_at', 'second') }} > {{ timeout_seconds }} then 1
            when client_session_id is not null
                and previous_client_session_id is not null
                and client_session_id <> previous_client_session_id then 1
            else 0
        end as is_session_start
    from with_previous

),

numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by device_key
            order by event_at, received_at, event_id
            rows between unbounded preceding and current row
        ) as device_session_number
    from session_starts

),

derived_sessions as (

    select
        device_key,
        device_session_number,
        min(event_at) as session_start_at,
        min(device_event_number) as first_device_event_number,
        min(client_session_id) as min_client_session_id,
        max(client_session_id) as max_client_session_id
    from numbered
    group by device_key, device_session_number

),

client_id_usage as (

    select
        *,
        count(*) over (partition by min_client_session_id) as derived_sessions_with_client_id
    from derived_sessions

),

session_ids_by_derived_session as (

    select
        device_key,
        device_session_number,
        first_device_event_number,
        session_start_at,
        case
            when min_client_session_id is not null
                and min_client_session_id = max_client_session_id
                and derived_sessions_with_client_id = 1
                then min_client_session_id
            else {{ dbt.concat(['device_key', "'-'", 'cast(' ~ epoch_seconds('session_start_at') ~ ' as ' ~ dbt.type_string() ~ ')']) }}
        end as session_id,
        (min_client_session_id is not null
            and min_client_session_id = max_client_session_id
            and derived_sessions_with_client_id = 1) as is_client_session_id
    from client_id_usage

),

session_ids as (

    {#- Derived sessions of one device that started in the same second share
        the fallback id: they are consecutive, and are numbered as one. -#}
    select
        *,
        min(first_device_event_number) over (partition by session_id) as session_first_device_event_number
    from session_ids_by_derived_session

),

sessionized as (

    select
        numbered.event_id,
        numbered.event_at,
        numbered.received_at,
        numbered.device_key,
        session_ids.session_id,
        session_ids.session_start_at,
        session_ids.is_client_session_id,
        numbered.device_event_number - session_ids.session_first_device_event_number + 1
            as event_number_in_session
    from numbered
    inner join session_ids
        on numbered.device_key = session_ids.device_key
        and numbered.device_session_number = session_ids.device_session_number

),

final as (

    select
        events.event_id,
        events.event_type,
        events.event_name,
        events.event_at,
        events.event_date,
        events.event_hour,
        events.received_at,
        events.anonymous_id,
        events.user_id,
        coalesce(events.user_id, identities.stitched_user_id) as resolved_user_id,
        sessionized.device_key,
        coalesce(events.user_id, identities.stitched_user_id, sessionized.device_key) as visitor_id,
        events.client_session_id,
        sessionized.session_id,
        sessionized.is_client_session_id,
        sessionized.session_start_at,
        cast(sessionized.session_start_at as date) as session_date,
        sessionized.event_number_in_session,
        {{ funnel_step_rank('events.event_type') }} as funnel_step_rank,
        events.page_path,
        events.page_referrer,
        events.product_id,
        events.category_code,
        events.category_top,
        events.brand,
        events.price,
        events.quantity,
        events.order_id,
        events.revenue,
        coalesce(events.order_currency, events.currency) as currency,
        events.search_query,
        events.platform,
        events.device_class,
        events.browser,
        events.os,
        events.utm_source,
        events.utm_medium,
        events.utm_campaign
    from events
    inner join sessionized
        on events.event_id = sessionized.event_id
        and events.event_at = sessionized.event_at
        and events.received_at = sessionized.received_at
    left join identities
        on events.anonymous_id = identities.anonymous_id
    where {{ plan_filter(plan, 'events.event_date') }}

)

select * from final
{{ sort_by_partition(plan) }}
