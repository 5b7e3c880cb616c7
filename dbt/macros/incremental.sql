{#-
  Late-data window for incremental models.

  Every incremental run rebuilds whole day partitions from
  late_data_window_start() to late_data_window_end() (inclusive):
  run_date (var, default: UTC date the run started) minus
  late_data_lookback_days (var, default 3) up to run_date.
  Events that arrive later than that are picked up by the nightly
  --full-refresh rebuild.
-#}

{% macro late_data_run_date() -%}
  {%- set configured = var('run_date', none) -%}
  {%- if configured -%}
    {{ return(modules.datetime.datetime.strptime(configured | string, '%Y-%m-%d').date()) }}
  {%- else -%}
    {{ return(run_started_at.date()) }}
  {%- endif -%}
{%- endmacro %}

{% macro late_data_window_dates(extra_days=0) -%}
  {#- the window's days, newest first, as 'YYYY-MM-DD' strings -#}
  {%- set end = late_data_run_date() -%}
  {%- set days = var('late_data_lookback_days', 3) | int + extra_days | int -%}
  {%- set dates = [] -%}
  {%- for i in range(days + 1) -%}
    {%- do dates.append((end - modules.datetime.timedelta(days=i)).strftime('%Y-%m-%d')) -%}
  {%- endfor -%}
  {{ return(dates) }}
{%- endmacro %}

{% macro late_data_window_start(extra_days=0) -%}
  cast('{{ late_data_window_dates(extra_days) | last }}' as date)
{%- endmacro %}

{% macro late_data_window_end() -%}
  cast('{{ late_data_run_date().strftime('%Y-%m-%d') }}' as date)
{%- endmacro %}

{% macro late_data_partitions() -%}
  {#- BigQuery static insert_overwrite partitions: date literals of the window -#}
  {%- set literals = [] -%}
  {%- for d in late_data_window_dates() -%}
    {%- do literals.append("date('" ~ d ~ "')") -%}
  {%- endfor -%}
  {{ return(literals) }}
{%- endmacro %}


{#-
  Adapter-specific configuration of a model that is incremental over day
  partitions. Use as:
    {{ config(**incremental_partition_config('event_date', cluster_by=['event_type'])) }}

  BigQuery: insert_overwrite with static partitions (the late-data window's
            dates, known at compile time), partitioned by the date column and
            clustered. dbt-bigquery swaps the partitions with one
            MERGE ... WHEN NOT MATCHED BY SOURCE AND <day in window> THEN DELETE
            WHEN NOT MATCHED THEN INSERT statement. Static partitions also
            avoid the "dynamic" variant's extra query for the partition list
            (its `array_agg(distinct ... ignore nulls)` is also something the
            local emulator cannot translate).
  Others (DuckDB): delete+insert keyed on the date column, which deletes the
            days present in the new batch and inserts them again, i.e. the
            same "replace these partitions" semantics.
-#}
{% macro incremental_partition_config(partition_field, cluster_by=none) -%}
  {{ return(adapter.dispatch('incremental_partition_config')(partition_field, cluster_by)) }}
{%- endmacro %}

{% macro bigquery__incremental_partition_config(partition_field, cluster_by) -%}
  {{ return({
      'materialized': 'incremental',
      'incremental_strategy': 'insert_overwrite',
      'partition_by': {'field': partition_field, 'data_type': 'date', 'granularity': 'day'},
      'partitions': late_data_partitions(),
      'cluster_by': cluster_by,
      'on_schema_change': 'append_new_columns',
  }) }}
{%- endmacro %}

{% macro default__incremental_partition_config(partition_field, cluster_by) -%}
  {{ return({
      'materialized': 'incremental',
      'incremental_strategy': 'delete+insert',
      'unique_key': partition_field,
      'on_schema_change': 'append_new_columns',
  }) }}
{%- endmacro %}
