{#-
  int_events__sessionized, at compile time, after the identity map was
  rebuilt: the event days whose rows the new map attributes to another user
  (a device that logged in for the first time, or became shared, since the
  days were built). Reads the sessionized table whole, but only its identity
  columns and only when the map changed (the nightly run), so the hourly
  runs never pay for it.
-#}
{% macro reattributed_event_days(identities) -%}
  {%- set query -%}
    select distinct cast(events.event_date as {{ dbt.type_string() }}) as partition_day
    from {{ this }} as events
    left join {{ identities }} as identities
        on events.anonymous_id = identities.anonymous_id
    where coalesce(events.user_id, identities.stitched_user_id, '') <> coalesce(events.resolved_user_id, '')
  {%- endset -%}
  {%- set days = [] -%}
  {%- for row in run_query(query).rows -%}
    {%- do days.append(row['partition_day'] | string) -%}
  {%- endfor -%}
  {{ return(days | sort) }}
{%- endmacro %}
