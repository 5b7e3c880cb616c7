{{ config(**incremental_partition_config('event_date', cluster_by=['event_type', 'anonymous_id'])) }}

{#-
  One row per event_id: typed and renamed raw events.
  - Deduplicated by event_id, keeping the copy received first (earliest
    received_at; ties broken by sent_at, then event_time). copies_received says
    how many raw rows carried the id.
  - Bots are flagged (is_bot), not removed: var exclude_bots removes them
    downstream.
  - Invalid events are flagged (is_valid, invalid_reason), not removed: they
    are counted in fct_data_quality_daily and left out of everything else.

  Incremental, day partitions on event_date (= the UTC date of the raw
  event_time, the raw table's partition column). A run rebuilds the days the
  loader re-loaded since the last run (_partition_loads), plus the
  neighbouring days whose kept copies change because a copy of one of
  their events arrived in a re-loaded day (dedupe_neighbour_days). It reads
  the raw table only through event_time filters: the rebuilt days in full,
  and the var dedupe_lookback_days days around them narrowly (event_id and
  the ordering columns), so a copy whose corrected event_time fell on the
  other side of midnight is still deduplicated and counted.
-#}

{%- set dedupe_days = var('dedupe_lookback_days', 1) | int %}
{%- set plan = partition_plan('event_date', inputs=[
      {'name': '_partition_loads', 'relation': source('clickstream', '_partition_loads')},
  ]) %}
{%- if plan.mode == 'incremental' and plan.partitions and dedupe_days > 0 %}
{%- set plan = plan_with_days(plan, dedupe_neighbour_days(plan.partitions, dedupe_days)) %}
{%- endif %}
{%- set neighbour_days = plan_neighbour_days(plan, dedupe_days, dedupe_days) if plan.mode == 'incremental' else [] %}
{{ partition_plan_marker(plan) }}

with

source_events as {{ inline_cte(plan.mode == 'full') }} (

    select * from {{ source('clickstream', 'events') }}
    where {{ plan_filter(plan, 'event_time', data_type='timestamp') }}

),

renamed as {{ inline_cte(plan.mode == 'full') }} (

    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        coalesce(cast(event_id_generated as {{ dbt.type_boolean() }}), false) as is_event_id_generated,
        lower(cast(event_type as {{ dbt.type_string() }})) as event_type,
        cast(event_name as {{ dbt.type_string() }}) as event_name,

        cast(event_time as {{ dbt.type_timestamp() }}) as event_at,
        cast(client_event_time as {{ dbt.type_timestamp() }}) as client_event_at,
        coalesce(cast(event_time_out_of_range as {{ dbt.type_boolean() }}), false) as is_event_time_out_of_range,
        cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at,
        cast(received_at as {{ dbt.type_timestamp() }}) as received_at,

        cast(source_id as {{ dbt.type_string() }}) as source_id,
        nullif(trim(cast(anonymous_id as {{ dbt.type_string() }})), '') as anonymous_id,
        nullif(trim(cast(user_id as {{ dbt.type_string() }})), '') as user_id,
        nullif(trim(cast(session_id as {{ dbt.type_string() }})), '') as client_session_id,

        cast(page_url as {{ dbt.type_string() }}) as page_url,
        cast(page_path as {{ dbt.type_string() }}) as page_path,
        nullif(trim(cast(page_referrer as {{ dbt.type_string() }})), '') as page_referrer,
        cast(page_title as {{ dbt.type_string() }}) as page_title,

        nullif(trim(cast(product_id as {{ dbt.type_string() }})), '') as product_id,
        cast(category_id as {{ dbt.type_string() }}) as category_id,
        nullif(lower(trim(cast(category_code as {{ dbt.type_string() }}))), '') as category_code,
        nullif(lower(trim(cast(brand as {{ dbt.type_string() }}))), '') as brand,
        {{ dbt.safe_cast('price', type_money()) }} as price,
        cast(currency as {{ dbt.type_string() }}) as currency,
        {{ dbt.safe_cast('quantity', dbt.type_bigint()) }} as quantity,

        nullif(trim(cast(order_id as {{ dbt.type_string() }})), '') as order_id,
        {{ dbt.safe_cast('revenue', type_money()) }} as revenue,
        cast(order_currency as {{ dbt.type_string() }}) as order_currency,

        cast(search_query as {{ dbt.type_string() }}) as search_query,

        lower(cast(platform as {{ dbt.type_string() }})) as platform,
        cast(app_name as {{ dbt.type_string() }}) as app_name,
        cast(app_version as {{ dbt.type_string() }}) as app_version,
        cast(locale as {{ dbt.type_string() }}) as locale,
        {{ dbt.safe_cast('screen_width', dbt.type_bigint()) }} as screen_width,
        {{ dbt.safe_cast('screen_height', dbt.type_bigint()) }} as screen_height,
        cast(library_name as {{ dbt.type_string() }}) as library_name,
        cast(library_version as {{ dbt.type_string() }}) as library_version,

        nullif(trim(cast(utm_source as {{ dbt.type_string() }})), '') as utm_source,
        nullif(trim(cast(utm_medium as {{ dbt.type_string() }})), '') as utm_medium,
        nullif(trim(cast(utm_campaign as {{ dbt.type_string() }})), '') as utm_campaign,
        nullif(trim(cast(utm_term as {{ dbt.type_string() }})), '') as utm_term,
        nullif(trim(cast(utm_content as {{ dbt.type_string() }})), '') as utm_content,

        cast(ip_truncated as {{ dbt.type_string() }}) as ip_truncated,
        cast(user_agent as {{ dbt.type_string() }}) as user_agent,
        cast(ua_browser as {{ dbt.type_string() }}) as browser,
        cast(ua_browser_version as {{ dbt.type_string() }}) as browser_version,
        cast(ua_os as {{ dbt.type_string() }}) as os,
        cast(ua_os_version as {{ dbt.type_string() }}) as os_version,
        coalesce(lower(cast(ua_device_class as {{ dbt.type_string() }})), 'other') as device_class,
        (coalesce(cast(is_bot as {{ dbt.type_boolean() }}), false)
            or coalesce(lower(cast(ua_device_class as {{ dbt.type_string() }})), '') = 'bot') as is_bot,

        cast(properties as {{ dbt.type_string() }}) as properties

    from source_events

),

copies as (

    {#- every copy of the rebuilt days' events the choice is made between:
        their own rows, and (incremental runs) the copies in the days around -#}
    select event_id, event_at, received_at, sent_at
    from renamed
    {%- if neighbour_days %}
    union all
    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(event_time as {{ dbt.type_timestamp() }}) as event_at,
        cast(received_at as {{ dbt.type_timestamp() }}) as received_at,
        cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at
    from {{ source('clickstream', 'events') }}
    where {{ days_filter('event_time', neighbour_days, data_type='timestamp') }}
      and cast(event_id as {{ dbt.type_string() }}) in (select event_id from renamed)
    {%- endif %}

),

copy_counts as (

    {#- the events with more than one copy (usually few): one hash
        aggregation over the copies' ids, no sort -#}
    select event_id, count(*) as copies_received
    from copies
    group by event_id
    having count(*) > 1

),

kept_copies as (

    {#- for each event with several copies, the day of the copy kept -#}
    select
        event_id,
        cast(event_at as date) as kept_event_date,
        copies_received
    from (
        select
            copies.event_id,
            copies.event_at,
            copy_counts.copies_received,
            row_number() over (
                partition by copies.event_id
                order by {{ dedupe_copy_order() }}
            ) as copy_rank
        from copies
        inner join copy_counts
            on copies.event_id = copy_counts.event_id
    ) as ranked
    where copy_rank = 1

),

deduplicated as (

    {#- An event with one copy is kept as it is (an anti-join against the
        few ids with several). Only the rows of events with copies are
        ranked: ranking whole rows is costly (every column goes through the
        sort), and the first copy is kept when it falls in the rebuilt days
        (else the event is kept in a neighbouring day). -#}
    select
        renamed.*,
        1 as copies_received,
        1 as copy_number
    from renamed
    left join copy_counts
        on renamed.event_id = copy_counts.event_id
    where copy_counts.event_id is null

    union all

    select *
    from (
        select
            renamed.*,
            kept_copies.copies_received,
            row_number() over (
                partition by renamed.event_id
                order by {{ dedupe_copy_order() }}
            ) as copy_number
        from renamed
        inner join kept_copies
            on renamed.event_id = kept_copies.event_id
        where {{ plan_filter(plan, 'kept_copies.kept_event_date') }}
    ) as ranked_copies
    where copy_number = 1

),

validated as (

    select
        *,
        case
            when event_type not in (
                'page_view', 'product_view', 'add_to_cart', 'remove_from_cart',
                'begin_checkout', 'purchase', 'search', 'custom'
            ) then 'unknown_event_type'
            when anonymous_id is null and user_id is null then 'missing_identity'
            when event_type in ('product_view', 'add_to_cart', 'remove_from_cart')
                and product_id is null then 'missing_product'
            when event_type = 'purchase' and order_id is null then 'missing_order'
            when price < 0 or quantity < 0 or revenue < 0 then 'negative_amount'
        end as invalid_reason
    from deduplicated

),

final as (

    select
        event_id,
        is_event_id_generated,
        event_type,
        event_name,
        event_at,
        cast(event_at as date) as event_date,
        {{ dbt.date_trunc('hour', 'event_at') }} as event_hour,
        client_event_at,
        is_event_time_out_of_range,
        sent_at,
        received_at,
        {{ dbt.datediff('event_at', 'received_at', 'second') }} as arrival_delay_seconds,
        source_id,
        anonymous_id,
        user_id,
        client_session_id,
        page_url,
        page_path,
        page_referrer,
        page_title,
        product_id,
        category_id,
        category_code,
        {{ dbt.split_part('category_code', "'.'", 1) }} as category_top,
        brand,
        price,
        currency,
        quantity,
        order_id,
        revenue,
        order_currency,
        search_query,
        platform,
        app_name,
        app_version,
        locale,
        screen_width,
        screen_height,
        library_name,
        library_version,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_term,
        utm_content,
        ip_truncated,
        user_agent,
        browser,
        browser_version,
        os,
        os_version,
        device_class,
        is_bot,
        properties,
        copies_received,
        invalid_reason is null as is_valid,
        invalid_reason
    from validated

)

select * from final
{{ sort_by_partition(plan) }}
