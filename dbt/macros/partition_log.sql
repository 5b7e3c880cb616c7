{#-
  The partition log: how the incremental models know what changed since they
  last ran. Two append-only tables in the models' schema, beside the loader's
  own change record (source clickstream._partition_loads):

  _partition_builds      one row per day partition a model rebuilt in a
                         completed run (partition_date null: the model was
                         built in full), written by the model's post-hook.
                         This is to the models downstream what
                         _partition_loads is to staging.
      model              the model that was built
      partition_date     the day partition it replaced (null: full build)
      built_at           when the build completed (the change time the
                         models downstream compare with their watermark)
      invocation_id      the dbt invocation

  _partition_watermarks  one row per (model, input) per completed run: the
                         newest change of the input the run consumed.
      model              the model that ran
      input_name         '_partition_loads' or the name of an upstream model
      consumed_through   newest loaded_at / built_at of the input consumed
      recorded_at        when the run completed
      invocation_id      the dbt invocation

  A model's watermark for an input is max(consumed_through). It is captured
  at compile time, in the same query that lists the changed days (one
  snapshot), and only written after the model's data: a run that fails
  before its post-hook leaves the watermark where it was, and the next run
  redoes the same days (rebuilding a day is idempotent). A load that lands
  while dbt runs is newer than the captured watermark, so the next run takes
  it.
-#}

{% macro partition_builds_relation() -%}
  {{ return(api.Relation.create(database=target.database, schema=target.schema,
                                identifier='_partition_builds', type='table')) }}
{%- endmacro %}

{% macro partition_watermarks_relation() -%}
  {{ return(api.Relation.create(database=target.database, schema=target.schema,
                                identifier='_partition_watermarks', type='table')) }}
{%- endmacro %}


{#- on-run-start: create the two tables when they do not exist yet. -#}
{% macro create_partition_builds_table() -%}
  create table if not exists {{ partition_builds_relation() }} (
      model {{ dbt.type_string() }},
      partition_date date,
      built_at {{ type_instant() }},
      invocation_id {{ dbt.type_string() }}
  )
  {{ partition_log_table_options() }}
{%- endmacro %}

{% macro create_partition_watermarks_table() -%}
  create table if not exists {{ partition_watermarks_relation() }} (
      model {{ dbt.type_string() }},
      input_name {{ dbt.type_string() }},
      consumed_through {{ type_instant() }},
      recorded_at {{ type_instant() }},
      invocation_id {{ dbt.type_string() }}
  )
  {{ partition_log_table_options() }}
{%- endmacro %}

{#- BigQuery: clustered by model, so a plan, which filters on model names,
    reads only the blocks of its own rows and its inputs' rows: the log grows
    by a few rows per model and run, and a plan's read stays under the 10 MB
    query minimum for years instead of growing with the history. -#}
{% macro partition_log_table_options() -%}
  {{ return(adapter.dispatch('partition_log_table_options')()) }}
{%- endmacro %}

{% macro bigquery__partition_log_table_options() -%}
  cluster by model
{%- endmacro %}

{% macro default__partition_log_table_options() -%}
{%- endmacro %}

{#- The log exists in a `dbt run` or `build` (on-run-start created it, after
    dbt filled its relation cache, so the cache cannot say); other commands
    (`compile`, `docs generate`, `show`) run no hook and may find none. -#}
{% macro partition_log_exists() -%}
  {%- if flags.WHICH in ['run', 'build'] -%}
    {{ return(true) }}
  {%- endif -%}
  {%- for relation in [partition_builds_relation(), partition_watermarks_relation()] -%}
    {%- if adapter.get_relation(database=relation.database, schema=relation.schema,
                                identifier=relation.identifier) is none -%}
      {{ return(false) }}
    {%- endif -%}
  {%- endfor -%}
  {{ return(true) }}
{%- endmacro %}


{#-
  Read, in one query, for each input of `model_name`: the newest change
  (micros), the model's watermark (micros) and the days changed after the
  watermark. `inputs` is a list of dicts: {'name': ..., 'relation': <the
  loader's _partition_loads relation>} for the raw input, {'name': <model>}
  for an upstream model (read from _partition_builds).
  Returns {input name: {'newest': int|none, 'watermark': int|none, 'days': [iso dates]}}.
-#}
{% macro read_partition_changes(model_name, inputs) -%}
  {%- set state = {} -%}
  {%- for input in inputs -%}
    {%- do state.update({input.name: {'newest': none, 'watermark': none, 'days': []}}) -%}
  {%- endfor -%}
  {%- set readable = inputs | selectattr('readable') | list if partition_log_exists() else [] -%}
  {%- set query -%}
    with

    watermarks as (
        select input_name, max(consumed_through) as consumed_through
        from {{ partition_watermarks_relation() }}
        where model = '{{ model_name }}'
        group by input_name
    ),

    changes as (
        {%- for input in readable %}
        {%- if input.relation is defined %}
        select '{{ input.name }}' as input_name, partition_date, loaded_at as changed_at
        from {{ input.relation }}
        {%- else %}
        select model as input_name, partition_date, built_at as changed_at
        from {{ partition_builds_relation() }}
        where model = '{{ input.name }}'
        {%- endif %}
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    ),

    newest as (
        select input_name, max(changed_at) as newest_change_at
        from changes
        group by input_name
    ),

    pending_days as (
        select distinct changes.input_name, changes.partition_date
        from changes
        left join watermarks
            on changes.input_name = watermarks.input_name
        where changes.partition_date is not null
          and (watermarks.consumed_through is null or changes.changed_at > watermarks.consumed_through)
    )

    select 'newest' as kind, input_name, cast(null as {{ dbt.type_string() }}) as partition_day,
           {{ epoch_micros('newest_change_at') }} as micros
    from newest
    union all
    select 'watermark' as kind, input_name, cast(null as {{ dbt.type_string() }}) as partition_day,
           {{ epoch_micros('consumed_through') }} as micros
    from watermarks
    union all
    select 'day' as kind, input_name, cast(partition_date as {{ dbt.type_string() }}) as partition_day,
           cast(null as {{ dbt.type_bigint() }}) as micros
    from pending_days
  {%- endset -%}
  {%- if readable | length == 0 -%}
    {{ return(state) }}
  {%- endif -%}
  {%- for row in run_query(query).rows -%}
    {%- set entry = state.get(row['input_name']) -%}
    {%- if entry is none -%}
      {#- a watermark of an input the model no longer has -#}
    {%- elif row['kind'] == 'day' -%}
      {%- do entry['days'].append(row['partition_day'] | string) -%}
    {%- elif row['micros'] is not none -%}
      {%- do entry.update({row['kind']: row['micros'] | int}) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(state) }}
{%- endmacro %}


{#-
  Post-hooks of every model in the partition log (set by
  incremental_partition_config and on int_identities__stitched). They read the
  plan the model's compiled SQL carries (see partition_plan_marker), so they
  record exactly what was captured at compile time.
-#}
{% macro partition_log_hooks() -%}
  {{ return(["{{ record_partition_builds() }}", "{{ record_partition_watermarks() }}"]) }}
{%- endmacro %}

{% macro record_partition_builds() -%}
  {%- set plan = partition_plan_from_sql(model.compiled_code) -%}
  {%- if plan is not none and execute -%}
    {%- set days = plan.partitions if plan.mode == 'incremental' else [none] -%}
    {%- if days | length > 0 -%}
  insert into {{ partition_builds_relation() }} (model, partition_date, built_at, invocation_id)
  {%- for day in days %}
  select '{{ plan.model }}', {{ date_literal(day) if day else 'cast(null as date)' }}, {{ dbt.current_timestamp() }}, '{{ invocation_id }}'
  {%- if not loop.last %}
  union all
  {%- endif %}
  {%- endfor %}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}

{% macro record_partition_watermarks() -%}
  {%- set plan = partition_plan_from_sql(model.compiled_code) -%}
  {%- if plan is not none and execute and plan.consumed | length > 0 -%}
  insert into {{ partition_watermarks_relation() }} (model, input_name, consumed_through, recorded_at, invocation_id)
  {%- for input_name, micros in plan.consumed | dictsort %}
  select '{{ plan.model }}', '{{ input_name }}', {{ timestamp_from_micros(micros) }}, {{ dbt.current_timestamp() }}, '{{ invocation_id }}'
  {%- if not loop.last %}
  union all
  {%- endif %}
  {%- endfor %}
  {%- endif -%}
{%- endmacro %}
