{{ config(severity='warn') }}
-- Every modelled event is in int_events__sessionized and in a session. This
-- holds after a full refresh; between nightly rebuilds events that arrived
-- later than the late-data window can make it differ, hence a warning.

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
