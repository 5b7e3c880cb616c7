{#- Small dialect helpers. Everything else uses dbt's cross-database macros
    (dbt.date_trunc, dbt.datediff, dbt.dateadd, dbt.safe_cast, dbt.split_part,
    dbt.type_*, dbt.concat). -#}

{#- Money columns: NUMERIC on BigQuery, DECIMAL(38,9) elsewhere (the raw contract). -#}
{% macro type_money() -%}
  {{ return(adapter.dispatch('type_money')()) }}
{%- endmacro %}

{% macro bigquery__type_money() -%}
  {{ return('numeric') }}
{%- endmacro %}

{% macro default__type_money() -%}
  {{ return('decimal(38, 9)') }}
{%- endmacro %}


{#- Whole seconds since 1970-01-01 00:00:00 UTC of a timestamp, as an integer. -#}
{% macro epoch_seconds(timestamp_expr) -%}
  {{ return(adapter.dispatch('epoch_seconds')(timestamp_expr)) }}
{%- endmacro %}

{% macro bigquery__epoch_seconds(timestamp_expr) -%}
  unix_seconds({{ timestamp_expr }})
{%- endmacro %}

{% macro duckdb__epoch_seconds(timestamp_expr) -%}
  cast(floor(epoch({{ timestamp_expr }})) as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro default__epoch_seconds(timestamp_expr) -%}
  {{ dbt.datediff("cast('1970-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")", timestamp_expr, 'second') }}
{%- endmacro %}


{#- numerator / denominator, null when the denominator is 0 or null, as a float. -#}
{% macro safe_ratio(numerator, denominator) -%}
  {{ return(adapter.dispatch('safe_ratio')(numerator, denominator)) }}
{%- endmacro %}

{% macro bigquery__safe_ratio(numerator, denominator) -%}
  safe_divide(cast({{ numerator }} as float64), cast({{ denominator }} as float64))
{%- endmacro %}

{% macro default__safe_ratio(numerator, denominator) -%}
  cast({{ numerator }} as {{ dbt.type_float() }}) / nullif(cast({{ denominator }} as {{ dbt.type_float() }}), 0)
{%- endmacro %}


{#- 1 when the condition holds, else 0: for sum()/max() based counting. -#}
{% macro flag(condition) -%}
  case when {{ condition }} then 1 else 0 end
{%- endmacro %}
