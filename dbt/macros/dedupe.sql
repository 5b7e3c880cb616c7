{#- The order copies of one event_id are ranked in: the first is kept. -#}
{% macro dedupe_copy_order() -%}
  received_at, sent_at, event_at
{%- endmacro %}


{#-
  Staging, at compile time: the days within `lookback` days of the re-loaded
  `days` (but not among them) whose kept rows must change because of them.
  A copy of an event can have its corrected event_time on the other side of
  midnight from the copy already kept, so re-loading day D can
    - move an event's kept copy from a neighbouring day into D (a copy
      received earlier arrived late), or out of D into a neighbour (D lost
      its copy), or
    - change the copies_received of a copy kept in a neighbouring day.
  This compares, for every event_id with a copy in `days`, the copy that
  should be kept (over all raw copies within `lookback` days) with what
  staging keeps now (read through staging's own partition filter) and
  returns the neighbouring days where they differ; usually none, so a run
  rebuilds just the re-loaded days.
-#}
{% macro dedupe_neighbour_days(days, lookback) -%}
  {%- set around = widen_days(days, lookback, lookback) -%}
  {%- set query -%}
    with

    copies as (
        select
            cast(event_id as {{ dbt.type_string() }}) as event_id,
            cast(event_time as {{ dbt.type_timestamp() }}) as event_at,
            cast(received_at as {{ dbt.type_timestamp() }}) as received_at,
            cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at
        from {{ source('clickstream', 'events') }}
        where {{ days_filter('event_time', around, data_type='timestamp') }}
    ),

    touched_events as (
        select distinct event_id
        from copies
        where {{ days_filter('event_at', days, data_type='timestamp') }}
    ),

    expected as (
        select event_id, cast(event_at as date) as event_date, copies_received
        from (
            select
                event_id,
                event_at,
                row_number() over (partition by event_id order by {{ dedupe_copy_order() }}) as copy_rank,
                count(*) over (partition by event_id) as copies_received
            from copies
            where event_id in (select event_id from touched_events)
        ) as ranked
        where copy_rank = 1
    ),

    kept as (
        select event_id, event_date, copies_received
        from {{ this }}
        where {{ days_filter('event_date', around) }}
          and event_id in (select event_id from touched_events)
    ),

    differing_days as (
        select expected.event_date as partition_date
        from expected
        left join kept
            on expected.event_id = kept.event_id
        where kept.event_id is null
           or kept.event_date <> expected.event_date
           or kept.copies_received <> expected.copies_received
        union all
        select kept.event_date as partition_date
        from kept
        left join expected
            on kept.event_id = expected.event_id
        where expected.event_id is null
           or kept.event_date <> expected.event_date
           or kept.copies_received <> expected.copies_received
    )

    select distinct cast(partition_date as {{ dbt.type_string() }}) as partition_day
    from differing_days
  {%- endset -%}
  {%- set neighbours = [] -%}
  {%- for row in run_query(query).rows if (row['partition_day'] | string) not in days -%}
    {%- do neighbours.append(row['partition_day'] | string) -%}
  {%- endfor -%}
  {{ return(neighbours | sort) }}
{%- endmacro %}
