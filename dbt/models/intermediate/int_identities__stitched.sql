{#-
  Identity map: one row per anonymous_id ever seen together with a user_id.

  Rule: an anonymous_id seen with exactly one user_id belongs to that user, so
  its anonymous events (before and after the login) are attributed to the
  user. An anonymous_id seen with several user_ids (a shared device) is a
  conflict: has_conflict is true, user_id holds the first user_id seen (by
  event time) for reference, and its anonymous-only events are NOT stitched
  (they stay attributed to the anonymous_id). Events that carry their own
  user_id always keep it.

  A table rebuilt in full by the nightly run (it reads every identified event
  of the history). Each rebuild is logged in _partition_builds, and the next
  int_events__sessionized run then rebuilds the days whose events the new map
  attributes to another visitor (reattributed_event_days): a later login
  re-attributes earlier anonymous events, however old.
-#}

{{ config(post_hook=partition_log_hooks()) }}
{%- set plan = partition_plan(none, inputs=[{'name': 'stg_clickstream__events'}]) %}
{{ partition_plan_marker(plan) }}

with

identified_events as (

    select
        anonymous_id,
        user_id,
        event_at,
        event_id
    from {{ ref('stg_clickstream__events') }}
    where is_valid
      and anonymous_id is not null
      and user_id is not null
      {% if var('exclude_bots') %}and not is_bot{% endif %}

),

ordered_identifications as (

    select
        anonymous_id,
        user_id,
        event_at,
        row_number() over (
            partition by anonymous_id
            order by event_at, event_id
        ) as identification_number
    from identified_events

),

per_user as (

    select
        anonymous_id,
        user_id,
        min(event_at) as first_identified_at
    from ordered_identifications
    group by anonymous_id, user_id

),

user_counts as (

    select
        anonymous_id,
        count(*) as user_id_count,
        min(first_identified_at) as first_identified_at,
        max(first_identified_at) as last_new_user_identified_at
    from per_user
    group by anonymous_id

),

first_users as (

    select anonymous_id, user_id
    from ordered_identifications
    where identification_number = 1

),

final as (

    select
        user_counts.anonymous_id,
        first_users.user_id,
        user_counts.user_id_count,
        user_counts.user_id_count > 1 as has_conflict,
        case when user_counts.user_id_count = 1 then first_users.user_id end as stitched_user_id,
        user_counts.first_identified_at
    from user_counts
    inner join first_users
        on user_counts.anonymous_id = first_users.anonymous_id

)

select * from final
