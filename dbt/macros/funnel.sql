{#-
  The shopping funnel: product_view (1) -> add_to_cart (2) -> begin_checkout (3)
  -> purchase (4). Every other event type is step 0.
-#}

{% macro funnel_steps() -%}
  {{ return([
      {'rank': 0, 'name': 'none'},
      {'rank': 1, 'name': 'product_view'},
      {'rank': 2, 'name': 'add_to_cart'},
      {'rank': 3, 'name': 'begin_checkout'},
      {'rank': 4, 'name': 'purchase'},
  ]) }}
{%- endmacro %}

{% macro funnel_step_rank(event_type) -%}
  case {{ event_type }}
    {%- for step in funnel_steps() if step.rank > 0 %}
    when '{{ step.name }}' then {{ step.rank }}
    {%- endfor %}
    else 0
  end
{%- endmacro %}

{% macro funnel_step_name(step_rank) -%}
  case {{ step_rank }}
    {%- for step in funnel_steps() %}
    when {{ step.rank }} then '{{ step.name }}'
    {%- endfor %}
  end
{%- endmacro %}


{#-
  Product-level funnel aggregates over product-carrying events (int_events__sessionized
  rows with a product_id), shared by the product, category and brand marts.
-#}
{% macro product_funnel_aggregates(relation_alias='product_events') -%}
    sum({{ flag("event_type = 'product_view'") }}) as product_views,
    sum({{ flag("event_type = 'add_to_cart'") }}) as add_to_carts,
    sum({{ flag("event_type = 'remove_from_cart'") }}) as cart_removals,
    sum({{ flag("event_type = 'begin_checkout'") }}) as checkouts,
    sum({{ flag("event_type = 'purchase'") }}) as purchases,
    coalesce(sum(case when event_type = 'purchase' then coalesce(quantity, 1) end), 0) as units_sold,
    coalesce(sum(case when event_type = 'purchase' then revenue end), 0) as revenue,
    count(distinct case when event_type = 'product_view' then visitor_id end) as viewers,
    count(distinct case when event_type = 'product_view' then session_id end) as view_sessions,
    count(distinct case when event_type = 'add_to_cart' then session_id end) as cart_sessions,
    count(distinct case when event_type = 'purchase' then session_id end) as purchase_sessions
{%- endmacro %}

{% macro product_funnel_rates() -%}
    {{ safe_ratio('add_to_carts', 'product_views') }} as view_to_cart_rate,
    {{ safe_ratio('cart_removals', 'add_to_carts') }} as cart_removal_rate,
    {{ safe_ratio('cart_sessions', 'view_sessions') }} as session_view_to_cart_rate,
    {{ safe_ratio('purchase_sessions', 'cart_sessions') }} as session_cart_to_purchase_rate,
    {{ safe_ratio('purchase_sessions', 'view_sessions') }} as conversion_rate
{%- endmacro %}
