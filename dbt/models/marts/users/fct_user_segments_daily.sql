{#-
  Visitors per day by segment. A visitor is active on the days their
  (non-quarantined) sessions started.
  - recency_segment: 'new' on the day of the visitor's first session, else 'returning'.
  - buyer_segment: 'buyer' if the visitor ordered in a session that day, else 'browser'.
-#}

with

sessions as (

    select * from {{ ref('fct_sessions') }}
    where not is_quarantined

),

users as (

    select visitor_id, first_session_date from {{ ref('dim_users') }}

),

visitor_days as (

    select
        sessions.session_date as activity_date,
        sessions.visitor_id,
        count(*) as sessions,
        sum(sessions.orders) as orders,
        sum(sessions.revenue) as revenue
    from sessions
    group by sessions.session_date, sessions.visitor_id

),

segmented as (

    select
        visitor_days.*,
        case when visitor_days.activity_date = users.first_session_date then 'new' else 'returning' end as recency_segment,
        case when visitor_days.orders > 0 then 'buyer' else 'browser' end as buyer_segment
    from visitor_days
    inner join users
        on visitor_days.visitor_id = users.visitor_id

),

final as (

    select
        activity_date,
        recency_segment,
        buyer_segment,
        count(*) as visitors,
        sum(sessions) as sessions,
        sum(orders) as orders,
        sum(revenue) as revenue
    from segmented
    group by activity_date, recency_segment, buyer_segment

)

select * from final
