{#-
  One row per visitor: a logged-in user (user_id, with every anonymous_id
  stitched to it, see int_identities__stitched) or an anonymous device that
  was never stitched. New vs returning and buyer vs browser are derived here.
-#}

with

sessions as (

    select * from {{ ref('fct_sessions') }}
    where not is_quarantined

),

events as (

    select * from {{ ref('int_events__sessionized') }}

),

event_facts as (

    select
        visitor_id,
        max(resolved_user_id) as user_id,
        count(distinct anonymous_id) as anonymous_ids,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at,
        count(*) as events
    from events
    group by visitor_id

),

session_facts as (

    select
        visitor_id,
        min(session_date) as first_session_date,
        max(session_date) as last_session_date,
        count(*) as sessions,
        count(distinct session_date) as active_days,
        sum(orders) as orders,
        sum(revenue) as revenue
    from sessions
    group by visitor_id

),

first_sessions as (

    select visitor_id, channel as first_channel, device_class as first_device_class
    from (
        select
            visitor_id,
            channel,
            device_class,
            row_number() over (partition by visitor_id order by session_start_at, session_id) as session_number
        from sessions
    ) as numbered_sessions
    where session_number = 1

),

final as (

    select
        event_facts.visitor_id,
        event_facts.user_id,
        event_facts.user_id is not null as is_identified,
        event_facts.anonymous_ids,
        event_facts.first_seen_at,
        event_facts.last_seen_at,
        session_facts.first_session_date,
        session_facts.last_session_date,
        event_facts.events,
        coalesce(session_facts.sessions, 0) as sessions,
        coalesce(session_facts.active_days, 0) as active_days,
        coalesce(session_facts.orders, 0) as orders,
        coalesce(session_facts.revenue, 0) as revenue,
        coalesce(session_facts.orders, 0) > 0 as is_buyer,
        case when coalesce(session_facts.orders, 0) > 0 then 'buyer' else 'browser' end as buyer_segment,
        case when coalesce(session_facts.active_days, 0) > 1 then 'returning' else 'one_time' end as loyalty_segment,
        first_sessions.first_channel,
        first_sessions.first_device_class
    from event_facts
    left join session_facts
        on event_facts.visitor_id = session_facts.visitor_id
    left join first_sessions
        on event_facts.visitor_id = first_sessions.visitor_id

)

select * from final
