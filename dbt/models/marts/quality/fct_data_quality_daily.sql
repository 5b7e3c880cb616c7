{{ config(**incremental_partition_config('event_date')) }}

{#-
  Data quality per event day: every raw row is accounted for. raw_rows =
  distinct_events + duplicate_rows; distinct_events = bot_events +
  invalid_events + modelled_events (a bot event that is also invalid counts
  as a bot event). modelled_events is what int_events__sessionized holds.

  Incremental, day partitions on event_date: rebuilds the days staging
  rebuilt, from those days of staging.
-#}

{%- set plan = partition_plan('event_date', inputs=[{'name': 'stg_clickstream__events'}]) %}
{{ partition_plan_marker(plan) }}

with

events as (

    select * from {{ ref('stg_clickstream__events') }}
    where {{ plan_filter(plan, 'event_date') }}

),

classified as (

    select
        *,
        case
            when is_bot and {{ 'true' if var('exclude_bots') else 'false' }} then 'bot'
            when not is_valid then 'invalid'
            else 'modelled'
        end as disposition
    from events

),

final as (

    select
        event_date,
        sum(copies_received) as raw_rows,
        count(*) as distinct_events,
        sum(copies_received - 1) as duplicate_rows,
        sum({{ flag("disposition = 'bot'") }}) as bot_events,
        sum({{ flag("disposition = 'invalid'") }}) as invalid_events,
        sum({{ flag("disposition = 'modelled'") }}) as modelled_events,
        sum({{ flag("invalid_reason = 'unknown_event_type'") }}) as unknown_event_type_events,
        sum({{ flag("invalid_reason = 'missing_identity'") }}) as missing_identity_events,
        sum({{ flag("invalid_reason = 'missing_product'") }}) as missing_product_events,
        sum({{ flag("invalid_reason = 'missing_order'") }}) as missing_order_events,
        sum({{ flag("invalid_reason = 'negative_amount'") }}) as negative_amount_events,
        sum({{ flag('is_event_time_out_of_range') }}) as out_of_range_events,
        sum({{ flag('is_event_id_generated') }}) as server_id_events,
        sum({{ flag('arrival_delay_seconds > ' ~ (var('late_arrival_threshold_minutes', 60) | int * 60)) }}) as late_arrivals,
        max(arrival_delay_seconds) as max_arrival_delay_seconds
    from classified
    group by event_date

)

select * from final
{{ sort_by_partition(plan) }}
