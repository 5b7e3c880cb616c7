{#-
  Incremental models over day partitions, driven by change records.

  Each incremental model starts with

      {%- set plan = partition_plan('event_date', inputs=[...]) %}
      {{ partition_plan_marker(plan) }}

  partition_plan() runs at compile time (run_query, when `execute`) and
  decides which day partitions of the model this run rebuilds:

    - for the raw input ('_partition_loads', the loader's change record):
      the partition_date of every load newer than the model's watermark;
    - for an upstream model: the days that model rebuilt after the
      watermark (its rows in _partition_builds), widened by `before`/`after`
      days when the model's rows depend on neighbouring days (sessions);
    - when the loader's table is absent or empty: the fixed late-data window
      (var run_date minus var late_data_lookback_days .. run_date), the only
      place the window is still used.

  The plan is written into the compiled SQL as a comment (the marker), and
  everything after compile reads it from there: the BigQuery static
  insert_overwrite (bq_insert_overwrite_sql below), the DuckDB strategy
  replace_partitions, and the post-hooks that log the rebuilt partitions and
  the new watermarks (partition_log.sql). So the SQL, the partitions swapped
  and the watermark recorded all come from one compile-time snapshot.

  A full build (first run, --full-refresh, or a table) has mode 'full': no
  filters, and the post-hooks record the watermarks captured at compile
  time, so the next incremental run starts from there.
-#}

{% macro partition_plan(partition_column, inputs) -%}
  {%- set plan = {
      'model': none,
      'partition_column': partition_column,
      'mode': 'full',
      'partitions': [],
      'consumed': {},
      'changed_inputs': [],
      'fallback': false,
  } -%}

  {%- if not execute or model.resource_type != 'model' -%}
    {#- parsing, or a unit test: nothing to read and nothing will be recorded -#}
    {{ return(plan) }}
  {%- endif -%}
  {%- do plan.update({'model': this.identifier, 'mode': 'incremental' if is_incremental() else 'full'}) -%}

  {%- set resolved = [] -%}
  {%- for input in inputs -%}
    {%- set entry = dict(input) -%}
    {%- if input.relation is defined -%}
      {%- set found = adapter.get_relation(database=input.relation.database, schema=input.relation.schema,
                                           identifier=input.relation.identifier) -%}
      {%- do entry.update({'readable': found is not none}) -%}
    {%- else -%}
      {%- do entry.update({'readable': true}) -%}
    {%- endif -%}
    {%- do resolved.append(entry) -%}
  {%- endfor -%}

  {%- set state = read_partition_changes(this.identifier, resolved) -%}
  {%- set days = [] -%}
  {%- for input in resolved -%}
    {%- set input_state = state[input.name] -%}
    {%- set newest = input_state.newest -%}
    {%- set watermark = input_state.watermark -%}
    {%- if newest is not none -%}
      {%- do plan.consumed.update({input.name: [newest, watermark or newest] | max}) -%}
    {%- endif -%}
    {%- if plan.mode == 'incremental' -%}
      {%- if input.relation is defined and newest is none -%}
        {#- no change record from the loader: fall back to the late-data window -#}
        {%- do plan.update({'fallback': true}) -%}
        {%- do days.extend(late_data_window_dates()) -%}
      {%- elif newest is not none and (watermark is none or newest > watermark) -%}
        {%- do plan.changed_inputs.append(input.name) -%}
        {%- if input.get('days', true) -%}
          {%- do days.extend(widen_days(input_state.days, input.get('before', 0), input.get('after', 0))) -%}
        {%- endif -%}
      {%- endif -%}
    {%- endif -%}
  {%- endfor -%}
  {%- do plan.update({'partitions': days | unique | sort | list}) -%}
  {{ return(plan) }}
{%- endmacro %}


{#- The plan with `extra_days` added to its partitions (incremental plans only). -#}
{% macro plan_with_days(plan, extra_days) -%}
  {%- if plan.mode == 'incremental' and extra_days | length > 0 -%}
    {%- do plan.update({'partitions': (plan.partitions + extra_days) | unique | sort | list}) -%}
  {%- endif -%}
  {{ return(plan) }}
{%- endmacro %}


{#- The plan as a SQL comment at the top of the compiled model. -#}
{% macro partition_plan_marker(plan) -%}
/* partition_plan: {{ tojson(plan, sort_keys=true) }} */
{%- endmacro %}

{% macro partition_plan_from_sql(sql) -%}
  {%- set found = modules.re.search('/\\* partition_plan: (\\{.*?\\}) \\*/', sql or '') -%}
  {{ return(fromjson(found.group(1)) if found else none) }}
{%- endmacro %}


{#- Day lists: sorted 'YYYY-MM-DD' strings. -#}
{% macro widen_days(days, before=0, after=0) -%}
  {%- set widened = [] -%}
  {%- for day in days -%}
    {%- set d = modules.datetime.date.fromisoformat(day | string) -%}
    {%- for offset in range(0 - before | int, after | int + 1) -%}
      {%- do widened.append((d + modules.datetime.timedelta(days=offset)).isoformat()) -%}
    {%- endfor -%}
  {%- endfor -%}
  {{ return(widened | unique | sort | list) }}
{%- endmacro %}

{#- Consecutive days merged into ranges {'first': day, 'last': day}. -#}
{% macro day_ranges(days) -%}
  {%- set ranges = [] -%}
  {%- for day in days | unique | sort -%}
    {%- set d = modules.datetime.date.fromisoformat(day | string) -%}
    {%- if ranges and (d - modules.datetime.date.fromisoformat(ranges[-1]['last'])).days == 1 -%}
      {%- do ranges[-1].update({'last': d.isoformat()}) -%}
    {%- else -%}
      {%- do ranges.append({'first': d.isoformat(), 'last': d.isoformat()}) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(ranges) }}
{%- endmacro %}


{#-
  A predicate restricting `column` to `days`: consecutive days become one
  half-open range, so both BigQuery (partition pruning) and DuckDB (row-group
  zone maps) skip everything else:
      ((col >= date '2024-03-09' and col < date '2024-03-12') or (...))
  `data_type` 'timestamp' compares with midnights UTC (the raw event_time).
  An empty day list becomes the empty range at 1970-01-01: it matches
  nothing (and prunes everything) but still filters on the column.
-#}
{% macro days_filter(column, days, data_type='date') -%}
  {%- set literal = midnight_literal if data_type == 'timestamp' else date_literal -%}
  {%- set ranges = day_ranges(days) -%}
  {%- if ranges | length == 0 -%}
    ({{ column }} >= {{ literal('1970-01-01') }} and {{ column }} < {{ literal('1970-01-01') }})
  {%- else -%}
    ({%- for span in ranges -%}
      ({{ column }} >= {{ literal(span['first']) }} and {{ column }} < {{ literal(widen_days([span['last']], 0, 1) | last) }})
      {%- if not loop.last %} or {% endif -%}
    {%- endfor -%})
  {%- endif -%}
{%- endmacro %}

{#-
  The plan's partitions (widened by before/after days) as a filter on
  `column`; `true` in a full build. Every incremental model reads each of
  its inputs through one of these on the input's partition column.
-#}
{% macro plan_filter(plan, column, before=0, after=0, data_type='date') -%}
  {%- if plan.mode == 'incremental' -%}
    {{ days_filter(column, widen_days(plan.partitions, before, after), data_type) }}
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{#- The days around the plan's partitions (before/after days) that are not partitions themselves. -#}
{% macro plan_neighbour_days(plan, before=0, after=0) -%}
  {%- set neighbours = [] -%}
  {%- for day in widen_days(plan.partitions, before, after) if day not in plan.partitions -%}
    {%- do neighbours.append(day) -%}
  {%- endfor -%}
  {{ return(neighbours) }}
{%- endmacro %}


{#-
  Fallback late-data window (used only when the loader's _partition_loads
  is absent or empty): run_date (var, default: the UTC date the run
  started) and the late_data_lookback_days (var, 3) days before it.
-#}
{% macro late_data_run_date() -%}
  {%- set configured = var('run_date', none) -%}
  {%- if configured -%}
    {{ return(modules.datetime.datetime.strptime(configured | string, '%Y-%m-%d').date()) }}
  {%- else -%}
    {{ return(run_started_at.date()) }}
  {%- endif -%}
{%- endmacro %}

{% macro late_data_window_dates() -%}
  {{ return(widen_days([late_data_run_date().isoformat()], var('late_data_lookback_days', 3) | int, 0)) }}
{%- endmacro %}


{#-
  Adapter-specific configuration of a model that is incremental over day
  partitions. Use as:
    {{ config(**incremental_partition_config('event_date', cluster_by=['event_type'])) }}

  BigQuery: insert_overwrite with static partitions, partitioned by the date
            column and clustered. The partition list is the plan's, read from
            the compiled SQL by bq_insert_overwrite_sql below, and dbt-bigquery
            replaces exactly those days with one
            MERGE ... WHEN NOT MATCHED BY SOURCE AND <day in list> THEN DELETE
            WHEN NOT MATCHED THEN INSERT. (Dynamic partitions would cost an
            extra query, and the local emulator cannot translate their
            `array_agg(distinct ... ignore nulls)`.)
  Others (DuckDB): replace_partitions (below): delete the plan's days, then
            insert the new rows, in the model's transaction.
  Both: the post-hooks log the rebuilt partitions and the new watermarks.
-#}
{% macro incremental_partition_config(partition_field, cluster_by=none) -%}
  {{ return(adapter.dispatch('incremental_partition_config')(partition_field, cluster_by)) }}
{%- endmacro %}

{% macro bigquery__incremental_partition_config(partition_field, cluster_by) -%}
  {{ return({
      'materialized': 'incremental',
      'incremental_strategy': 'insert_overwrite',
      'partition_by': {'field': partition_field, 'data_type': 'date', 'granularity': 'day'},
      'cluster_by': cluster_by,
      'on_schema_change': 'append_new_columns',
      'post_hook': partition_log_hooks(),
  }) }}
{%- endmacro %}

{% macro default__incremental_partition_config(partition_field, cluster_by) -%}
  {{ return({
      'materialized': 'incremental',
      'incremental_strategy': 'replace_partitions',
      'on_schema_change': 'append_new_columns',
      'post_hook': partition_log_hooks(),
  }) }}
{%- endmacro %}


{#-
  DuckDB incremental strategy: replace the plan's day partitions. Unlike
  delete+insert on a key, a listed day that has no rows any more (a session
  that moved to the previous day) is emptied too.
-#}
{% macro get_incremental_replace_partitions_sql(arg_dict) -%}
  {%- set plan = partition_plan_from_sql(model.compiled_code) -%}
  {%- if plan is none -%}
    {% do exceptions.raise_compiler_error('replace_partitions: ' ~ this ~ ' carries no partition_plan') %}
  {%- endif -%}
  {%- set columns = get_quoted_csv(arg_dict.dest_columns | map(attribute='name')) -%}
  delete from {{ arg_dict.target_relation }}
  where {{ days_filter(plan.partition_column, plan.partitions) }};

  insert into {{ arg_dict.target_relation }} ({{ columns }})
  select {{ columns }} from {{ arg_dict.temp_relation }}
{%- endmacro %}


{#-
  BigQuery: dbt-bigquery's insert_overwrite, with the static partition list
  taken from the plan in the compiled SQL (a config value would be fixed at
  parse time, before the plan exists). An empty list becomes the
  never-used day 1970-01-01, so a run without changes replaces nothing (an
  empty list would switch dbt-bigquery to dynamic partitions).
  Models without a plan keep dbt-bigquery's behaviour.
-#}
{% macro bq_insert_overwrite_sql(
    tmp_relation, target_relation, sql, unique_key, partition_by, partitions, dest_columns, tmp_relation_exists, copy_partitions
) %}
    {%- set plan = partition_plan_from_sql(sql) -%}
    {%- if plan is not none -%}
        {%- set partitions = [] -%}
        {%- for day in (plan.partitions or ['1970-01-01']) -%}
            {%- do partitions.append(date_literal(day)) -%}
        {%- endfor -%}
    {%- endif -%}
    {% if partitions is not none and partitions != [] %}
        {{ bq_static_insert_overwrite_sql(tmp_relation, target_relation, sql, partition_by, partitions, dest_columns, tmp_relation_exists, copy_partitions) }}
    {% else %}
        {{ bq_dynamic_insert_overwrite_sql(tmp_relation, target_relation, sql, unique_key, partition_by, dest_columns, tmp_relation_exists, copy_partitions) }}
    {% endif %}
{% endmacro %}


{#-
  The end of an incremental model's final SELECT. DuckDB has no partitions,
  only row-group zone maps: writing the rows sorted by the partition column
  keeps each day in its own run of row groups, so a read of some days
  through plan_filter skips the others, as BigQuery's partition pruning does.
  BigQuery partitions (and clusters) the table itself: nothing to add.
  A full build is not sorted: the sort moves every column of every row (most
  of staging's time at 10 M events), while a run's rebuilt days are few, and
  sorted as they are inserted.
-#}
{% macro sort_by_partition(plan) -%}
  {{ return(adapter.dispatch('sort_by_partition')(plan)) }}
{%- endmacro %}

{% macro default__sort_by_partition(plan) -%}
{%- if plan.mode != 'full' %}
order by {{ plan.partition_column }}
{%- endif %}
{%- endmacro %}

{% macro bigquery__sort_by_partition(plan) -%}
{%- endmacro %}
