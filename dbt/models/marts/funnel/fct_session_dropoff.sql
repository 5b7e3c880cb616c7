{#-
  Where sessions end relative to the funnel: one row per funnel step
  (none, product_view, add_to_cart, begin_checkout, purchase) with the
  sessions whose furthest step is that step, the sessions that reached it
  (furthest step at or after it), and the drop-off rate: the share of the
  sessions that reached the step and went no further (null for purchase,
  the end of the funnel). Quarantined sessions are left out.
-#}

with

sessions as (

    select * from {{ ref('fct_sessions') }}
    where not is_quarantined

),

steps as (

    {%- for step in funnel_steps() %}
    select {{ step.rank }} as funnel_step_rank, '{{ step.name }}' as funnel_step
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

ended_at_step as (

    select
        furthest_funnel_step_rank,
        count(*) as sessions,
        sum(duration_seconds) as total_duration_seconds,
        sum(events) as total_events
    from sessions
    group by furthest_funnel_step_rank

),

totals as (

    select count(*) as all_sessions from sessions

),

final as (

    select
        steps.funnel_step_rank,
        steps.funnel_step,
        coalesce(ended_at_step.sessions, 0) as sessions_ended_at_step,
        sum(coalesce(ended_at_step.sessions, 0)) over (
            order by steps.funnel_step_rank desc
            rows between unbounded preceding and current row
        ) as sessions_reached_step,
        {{ safe_ratio('coalesce(ended_at_step.sessions, 0)', 'totals.all_sessions') }} as share_of_sessions,
        {{ safe_ratio('ended_at_step.total_duration_seconds', 'ended_at_step.sessions') }} as avg_duration_seconds,
        {{ safe_ratio('ended_at_step.total_events', 'ended_at_step.sessions') }} as avg_events
    from steps
    cross join totals
    left join ended_at_step
        on steps.funnel_step_rank = ended_at_step.furthest_funnel_step_rank

)

select
    *,
    case
        when funnel_step_rank < {{ (funnel_steps() | last).rank }}
            then {{ safe_ratio('sessions_ended_at_step', 'sessions_reached_step') }}
    end as drop_off_rate
from final
