{#-
  Marketing channel of a session, from the UTM tags and referrer of its first
  event. First matching rule wins:
    1. utm_medium cpc/ppc/paid/paidsearch/paid_search   -> paid_search
    2. utm_medium paid_social/paidsocial                -> paid_social
    3. utm_medium email/newsletter                      -> email
    4. utm_medium social/social-media/social_media      -> social
    5. utm_medium affiliate                             -> affiliate
    6. utm_medium display/banner/cpm                    -> display
    7. any other utm_source or utm_medium               -> other_campaign
    8. no referrer, or a referrer on var site_domains   -> direct
    9. referrer on a search engine                      -> organic_search
   10. referrer on a social network                     -> social
   11. any other referrer                               -> referral
-#}
{% macro channel_grouping(utm_source, utm_medium, referrer) -%}
  {%- set medium = 'lower(' ~ utm_medium ~ ')' -%}
  {%- set ref = 'lower(' ~ referrer ~ ')' -%}
  {%- set search_engines = ['google.', 'bing.', 'duckduckgo.', 'yahoo.', 'baidu.', 'yandex.', 'ecosia.'] -%}
  {%- set social_networks = ['facebook.', 'instagram.', 'twitter.', '//t.co/', '//x.com', 'linkedin.', 'pinterest.', 'tiktok.', 'reddit.', 'youtube.'] -%}
  case
    when {{ medium }} in ('cpc', 'ppc', 'paid', 'paidsearch', 'paid_search') then 'paid_search'
    when {{ medium }} in ('paid_social', 'paidsocial') then 'paid_social'
    when {{ medium }} in ('email', 'newsletter') then 'email'
    when {{ medium }} in ('social', 'social-media', 'social_media') then 'social'
    when {{ medium }} = 'affiliate' then 'affiliate'
    when {{ medium }} in ('display', 'banner', 'cpm') then 'display'
    when {{ utm_source }} is not null or {{ utm_medium }} is not null then 'other_campaign'
    when {{ referrer }} is null or trim({{ referrer }}) = '' then 'direct'
    {%- for domain in var('site_domains', []) %}
    when {{ ref }} like '%://{{ domain | lower }}%' then 'direct'
    {%- endfor %}
    when {%- for s in search_engines %} {{ ref }} like '%{{ s }}%'{% if not loop.last %} or{% endif %}{% endfor %} then 'organic_search'
    when {%- for s in social_networks %} {{ ref }} like '%{{ s }}%'{% if not loop.last %} or{% endif %}{% endfor %} then 'social'
    else 'referral'
  end
{%- endmacro %}

{% macro channel_values() -%}
  {{ return(['paid_search', 'paid_social', 'email', 'social', 'affiliate', 'display', 'other_campaign', 'direct', 'organic_search', 'referral']) }}
{%- endmacro %}
