{{ config(severity='warn', tags=['full_history']) }}
-- Every modelled event is in int_events__sessionized and in a session. The
-- incremental runs keep this true as long as no session reaches more than
-- var session_lookback_days days past its start (longer ones are quarantined
-- and may lose their latest events until a full refresh), hence a warning.

with

modelled as (
    select coalesce(sum(modelled_events), 0) as events
    from {{ ref('fct_data_quality_daily') }}
),

sessionized as (
    select count(*) as events from {{ ref('int_events__sessionized') }}
),

in_sessions as (
    select coalesce(sum(events), 0) as events from {{ ref('fct_sessions') }}
)

select *
from modelled
cross join sessionized
cross join in_sessions
where modelled.events <> sessionized.events
   or sessionized.events <> in_sessions.events
