{{ config(tags=['full_history']) }}

-- Data quality accounts for every raw row: raw rows = distinct events +
-- duplicates, distinct events = bots + invalid + modelled, the raw table's
-- row count equals the sum of raw_rows, and staging has one row per distinct
-- raw event_id. Returns a row when any of these fail.

with

quality as (
    select
        coalesce(sum(raw_rows), 0) as raw_rows,
        coalesce(sum(distinct_events), 0) as distinct_events,
        coalesce(sum(duplicate_rows), 0) as duplicate_rows,
        coalesce(sum(bot_events + invalid_events + modelled_events), 0) as classified_events
    from {{ ref('fct_data_quality_daily') }}
),

raw_counts as (
    select
        count(*) as raw_rows,
        count(distinct event_id) as distinct_events
    from {{ source('clickstream', 'events') }}
),

staged as (
    select count(*) as events from {{ ref('stg_clickstream__events') }}
)

select *
from quality
cross join raw_counts
cross join staged
where quality.raw_rows <> raw_counts.raw_rows
   or quality.distinct_events <> raw_counts.distinct_events
   or quality.raw_rows <> quality.distinct_events + quality.duplicate_rows
   or quality.distinct_events <> quality.classified_events
   or staged.events <> raw_counts.distinct_events
