"""Hand-computed mart contents for the journeys in fixture.py.

Worked out on paper from the journeys, not from the models. Key facts:

Valid, non-bot events after dedupe (e03 and e09 arrive twice; c01/c02 are a bot;
x03 is invalid): 2024-03-10: A 10 (e01-e10) + B 5 + G 1 (g01) = 16;
2024-03-11: G 2 (g02, g03) + D 4 (d01-d04) + E 3 (x01, x02, x04) = 9.

Sessions (30-minute timeout; midnight does not split):
  s-a1            a1/u1  2024-03-10 10:00-10:08   480 s  10 events  furthest purchase  paid_search  desktop
  a2-1710072000   a2     2024-03-10 12:00-12:10   600 s   3 events  add_to_cart        direct       mobile
  a2-1710075000   a2     2024-03-10 12:50-12:51    60 s   2 events  begin_checkout     direct       mobile
                         (40 minutes after 12:10 > 30: a new session)
  a6-1710114600   a6     2024-03-10 23:50-00:15  1500 s   3 events  product_view       organic_search mobile
  s-d1            a3/u1  2024-03-11 09:00-09:05   300 s   4 events  purchase           social       mobile
  s-e1            a4     2024-03-11 15:00-15:03   180 s   3 events  none               email        desktop
(epoch seconds: 2024-03-10 12:00 UTC = 1710072000, 12:50 = 1710075000, 23:50 = 1710114600)

Stitching: a1 logs in as u1 at e07, so e01-e06 are u1's; a3 is u1's too.
Visitors: u1, a2, a6, a4.

Orders: O1 = e09 (P1, 500) + e10 (P2, 100) = 600; O2 = d04 (P2, 100).
"""

from __future__ import annotations

R = lambda num, den: round(num / den, 4)  # noqa: E731  a rate as the tests compare it

# model -> (key columns to sort on, expected rows)
EXPECTED: dict[str, tuple[list[str], list[dict]]] = {}

EXPECTED["fct_sessions"] = (["session_id"], [
    dict(session_id="a2-1710072000", visitor_id="a2", user_id=None, session_date="2024-03-10",
         session_start_at="2024-03-10 12:00:00", session_end_at="2024-03-10 12:10:00", duration_seconds=600,
         events=3, page_views=1, product_views=1, add_to_carts=1, cart_removals=0, checkouts=0, purchase_events=0,
         orders=0, revenue=0, has_purchase=False, landing_page="/home", exit_page="/p/p3",
         last_event_type="add_to_cart", furthest_funnel_step="add_to_cart", channel="direct",
         device_class="mobile", platform="ios", is_client_session_id=False, is_quarantined=False),
    dict(session_id="a2-1710075000", visitor_id="a2", user_id=None, session_date="2024-03-10",
         session_start_at="2024-03-10 12:50:00", session_end_at="2024-03-10 12:51:00", duration_seconds=60,
         events=2, page_views=1, product_views=0, add_to_carts=0, cart_removals=0, checkouts=1, purchase_events=0,
         orders=0, revenue=0, has_purchase=False, landing_page="/cart", exit_page="/checkout",
         last_event_type="begin_checkout", furthest_funnel_step="begin_checkout", channel="direct",
         device_class="mobile", platform="ios", is_client_session_id=False, is_quarantined=False),
    dict(session_id="a6-1710114600", visitor_id="a6", user_id=None, session_date="2024-03-10",
         session_start_at="2024-03-10 23:50:00", session_end_at="2024-03-11 00:15:00", duration_seconds=1500,
         events=3, page_views=1, product_views=2, add_to_carts=0, cart_removals=0, checkouts=0, purchase_events=0,
         orders=0, revenue=0, has_purchase=False, landing_page="/home", exit_page="/p/p3",
         last_event_type="product_view", furthest_funnel_step="product_view", channel="organic_search",
         device_class="mobile", platform="android", is_client_session_id=False, is_quarantined=False),
    dict(session_id="s-a1", visitor_id="u1", user_id="u1", session_date="2024-03-10",
         session_start_at="2024-03-10 10:00:00", session_end_at="2024-03-10 10:08:00", duration_seconds=480,
         events=10, page_views=2, product_views=2, add_to_carts=2, cart_removals=1, checkouts=1, purchase_events=2,
         orders=1, revenue=600, has_purchase=True, landing_page="/home", exit_page="/checkout/complete",
         last_event_type="purchase", furthest_funnel_step="purchase", channel="paid_search",
         device_class="desktop", platform="web", is_client_session_id=True, is_quarantined=False),
    dict(session_id="s-d1", visitor_id="u1", user_id="u1", session_date="2024-03-11",
         session_start_at="2024-03-11 09:00:00", session_end_at="2024-03-11 09:05:00", duration_seconds=300,
         events=4, page_views=1, product_views=1, add_to_carts=1, cart_removals=0, checkouts=0, purchase_events=1,
         orders=1, revenue=100, has_purchase=True, landing_page="/home", exit_page="/checkout/complete",
         last_event_type="purchase", furthest_funnel_step="purchase", channel="social",
         device_class="mobile", platform="ios", is_client_session_id=True, is_quarantined=False),
    dict(session_id="s-e1", visitor_id="a4", user_id=None, session_date="2024-03-11",
         session_start_at="2024-03-11 15:00:00", session_end_at="2024-03-11 15:03:00", duration_seconds=180,
         events=3, page_views=1, product_views=0, add_to_carts=0, cart_removals=0, checkouts=0, purchase_events=0,
         orders=0, revenue=0, has_purchase=False, landing_page="/home", exit_page="/home",
         last_event_type="custom", furthest_funnel_step="none", channel="email",
         device_class="desktop", platform="web", is_client_session_id=True, is_quarantined=False),
])

EXPECTED["int_identities__stitched"] = (["anonymous_id"], [
    dict(anonymous_id="a1", user_id="u1", user_id_count=1, has_conflict=False, stitched_user_id="u1",
         first_identified_at="2024-03-10 10:06:00"),
    dict(anonymous_id="a3", user_id="u1", user_id_count=1, has_conflict=False, stitched_user_id="u1",
         first_identified_at="2024-03-11 09:00:00"),
])

EXPECTED["fct_orders"] = (["order_id"], [
    dict(order_id="O1", ordered_at="2024-03-10 10:08:00", order_date="2024-03-10", session_id="s-a1",
         visitor_id="u1", products=2, order_lines=2, units=2, revenue=600, currency="EUR"),
    dict(order_id="O2", ordered_at="2024-03-11 09:05:00", order_date="2024-03-11", session_id="s-d1",
         visitor_id="u1", products=1, order_lines=1, units=1, revenue=100, currency="EUR"),
])

# Hours: 03-10 10h A 10 events; 12h B 5; 23h G 1. 03-11 00h G 2; 09h D 4; 15h E 3.
EXPECTED["fct_traffic_hourly"] = (["event_hour"], [
    dict(event_hour="2024-03-10 10:00:00", event_date="2024-03-10", hour_of_day=10, events=10, page_views=2,
         product_views=2, purchase_events=2, active_sessions=1, visitors=1, events_rank_in_day=1, is_peak_hour=True),
    dict(event_hour="2024-03-10 12:00:00", event_date="2024-03-10", hour_of_day=12, events=5, page_views=2,
         product_views=1, purchase_events=0, active_sessions=2, visitors=1, events_rank_in_day=2, is_peak_hour=False),
    dict(event_hour="2024-03-10 23:00:00", event_date="2024-03-10", hour_of_day=23, events=1, page_views=1,
         product_views=0, purchase_events=0, active_sessions=1, visitors=1, events_rank_in_day=3, is_peak_hour=False),
    dict(event_hour="2024-03-11 00:00:00", event_date="2024-03-11", hour_of_day=0, events=2, page_views=0,
         product_views=2, purchase_events=0, active_sessions=1, visitors=1, events_rank_in_day=3, is_peak_hour=False),
    dict(event_hour="2024-03-11 09:00:00", event_date="2024-03-11", hour_of_day=9, events=4, page_views=1,
         product_views=1, purchase_events=1, active_sessions=1, visitors=1, events_rank_in_day=1, is_peak_hour=True),
    dict(event_hour="2024-03-11 15:00:00", event_date="2024-03-11", hour_of_day=15, events=3, page_views=1,
         product_views=0, purchase_events=0, active_sessions=1, visitors=1, events_rank_in_day=2, is_peak_hour=False),
])

# Sessions started: 03-10 A, B1, B2, G (durations 480+600+60+1500 = 2640 / 4 = 660);
# 03-11 D, E ((300+180)/2 = 240). No single-event sessions: bounce 0.
EXPECTED["fct_traffic_daily"] = (["event_date"], [
    dict(event_date="2024-03-10", events=16, page_views=5, product_views=3, visitors=3, identified_users=1,
         sessions=4, orders=1, revenue=600, avg_session_seconds=660.0, bounce_rate=0.0,
         peak_hour="2024-03-10 10:00:00", peak_hour_of_day=10, peak_hour_events=10),
    dict(event_date="2024-03-11", events=9, page_views=2, product_views=3, visitors=3, identified_users=1,
         sessions=2, orders=1, revenue=100, avg_session_seconds=240.0, bounce_rate=0.0,
         peak_hour="2024-03-11 09:00:00", peak_hour_of_day=9, peak_hour_events=4),
])

EXPECTED["fct_events_daily"] = (["event_date", "event_name"], [
    dict(event_date="2024-03-10", event_type="add_to_cart", event_name="add_to_cart", events=3, sessions=2, visitors=2),
    dict(event_date="2024-03-10", event_type="begin_checkout", event_name="begin_checkout", events=2, sessions=2, visitors=2),
    dict(event_date="2024-03-10", event_type="page_view", event_name="page_view", events=5, sessions=4, visitors=3),
    dict(event_date="2024-03-10", event_type="product_view", event_name="product_view", events=3, sessions=2, visitors=2),
    dict(event_date="2024-03-10", event_type="purchase", event_name="purchase", events=2, sessions=1, visitors=1),
    dict(event_date="2024-03-10", event_type="remove_from_cart", event_name="remove_from_cart", events=1, sessions=1, visitors=1),
    dict(event_date="2024-03-11", event_type="add_to_cart", event_name="add_to_cart", events=1, sessions=1, visitors=1),
    dict(event_date="2024-03-11", event_type="custom", event_name="newsletter_signup", events=1, sessions=1, visitors=1),
    dict(event_date="2024-03-11", event_type="page_view", event_name="page_view", events=2, sessions=2, visitors=2),
    dict(event_date="2024-03-11", event_type="product_view", event_name="product_view", events=3, sessions=2, visitors=2),
    dict(event_date="2024-03-11", event_type="purchase", event_name="purchase", events=1, sessions=1, visitors=1),
    dict(event_date="2024-03-11", event_type="search", event_name="search", events=1, sessions=1, visitors=1),
])

# Event level: 03-10 views e02 e04 b02, carts e03 e05 b03, checkouts e08 b05, purchase lines e09 e10 (1 order).
# 03-11 views g02 g03 d02, cart d03, no checkout, purchase d04.
# Session level by furthest step: 03-10 A=4, B1=2, B2=3, G=1; 03-11 D=4, E=0.
EXPECTED["fct_funnel_daily"] = (["funnel_date"], [
    dict(funnel_date="2024-03-10", product_view_events=3, add_to_cart_events=3, begin_checkout_events=2,
         purchase_events=2, orders=1, revenue=600, view_to_cart_rate=R(3, 3), cart_to_checkout_rate=R(2, 3),
         checkout_to_purchase_rate=R(1, 2), view_to_purchase_rate=R(1, 3), sessions=4,
         sessions_reached_product_view=4, sessions_reached_add_to_cart=3, sessions_reached_begin_checkout=2,
         sessions_reached_purchase=1, session_view_to_cart_rate=R(3, 4), session_cart_to_checkout_rate=R(2, 3),
         session_checkout_to_purchase_rate=R(1, 2), session_conversion_rate=R(1, 4)),
    dict(funnel_date="2024-03-11", product_view_events=3, add_to_cart_events=1, begin_checkout_events=0,
         purchase_events=1, orders=1, revenue=100, view_to_cart_rate=R(1, 3), cart_to_checkout_rate=R(0, 1),
         checkout_to_purchase_rate=None, view_to_purchase_rate=R(1, 3), sessions=2,
         sessions_reached_product_view=1, sessions_reached_add_to_cart=1, sessions_reached_begin_checkout=1,
         sessions_reached_purchase=1, session_view_to_cart_rate=1.0, session_cart_to_checkout_rate=1.0,
         session_checkout_to_purchase_rate=1.0, session_conversion_rate=R(1, 2)),
])

# P1 (apple, electronics.smartphone): views e02 g02 (sessions A, G; visitors u1, a6), cart e03 (A), bought e09 (A, 500).
# P2 (acme, electronics.audio.headphone): views e04 d02 (A, D; visitor u1 only), carts e05 d03, removal e06,
#    bought e10 + d04 (A, D; 2 units, 200).
# P3 (acme, apparel.shoes): views b02 g03 (B1, G; a2, a6), cart b03 (B1), not bought.
EXPECTED["fct_product_performance"] = (["product_id"], [
    dict(product_id="P1", category_code="electronics.smartphone", category_top="electronics", brand="apple",
         product_views=2, add_to_carts=1, cart_removals=0, checkouts=0, purchases=1, units_sold=1, revenue=500,
         viewers=2, view_sessions=2, cart_sessions=1, purchase_sessions=1, view_to_cart_rate=R(1, 2),
         cart_removal_rate=0.0, session_view_to_cart_rate=R(1, 2), session_cart_to_purchase_rate=1.0,
         conversion_rate=R(1, 2), revenue_rank=1, units_rank=2, views_rank=1, carts_rank=2, conversion_rank=2),
    dict(product_id="P2", category_code="electronics.audio.headphone", category_top="electronics", brand="acme",
         product_views=2, add_to_carts=2, cart_removals=1, checkouts=0, purchases=2, units_sold=2, revenue=200,
         viewers=1, view_sessions=2, cart_sessions=2, purchase_sessions=2, view_to_cart_rate=1.0,
         cart_removal_rate=R(1, 2), session_view_to_cart_rate=1.0, session_cart_to_purchase_rate=1.0,
         conversion_rate=1.0, revenue_rank=2, units_rank=1, views_rank=1, carts_rank=1, conversion_rank=1),
    dict(product_id="P3", category_code="apparel.shoes", category_top="apparel", brand="acme",
         product_views=2, add_to_carts=1, cart_removals=0, checkouts=0, purchases=0, units_sold=0, revenue=0,
         viewers=2, view_sessions=2, cart_sessions=1, purchase_sessions=0, view_to_cart_rate=R(1, 2),
         cart_removal_rate=0.0, session_view_to_cart_rate=R(1, 2), session_cart_to_purchase_rate=0.0,
         conversion_rate=0.0, revenue_rank=3, units_rank=3, views_rank=1, carts_rank=2, conversion_rank=3),
])

# electronics = P1 + P2: view sessions {A, G, D} = 3, cart sessions {A, D} = 2, purchase sessions {A, D} = 2,
# viewers {u1, a6} = 2.
EXPECTED["fct_funnel_categories"] = (["category_level", "category"], [
    dict(category_level="leaf", category="apparel.shoes", products=1, product_views=2, add_to_carts=1,
         cart_removals=0, purchases=0, units_sold=0, revenue=0, viewers=2, view_sessions=2, cart_sessions=1,
         purchase_sessions=0, view_to_cart_rate=R(1, 2), conversion_rate=0.0, interest_rank=1, revenue_rank=3),
    dict(category_level="leaf", category="electronics.audio.headphone", products=1, product_views=2,
         add_to_carts=2, cart_removals=1, purchases=2, units_sold=2, revenue=200, viewers=1, view_sessions=2,
         cart_sessions=2, purchase_sessions=2, view_to_cart_rate=1.0, conversion_rate=1.0, interest_rank=1,
         revenue_rank=2),
    dict(category_level="leaf", category="electronics.smartphone", products=1, product_views=2, add_to_carts=1,
         cart_removals=0, purchases=1, units_sold=1, revenue=500, viewers=2, view_sessions=2, cart_sessions=1,
         purchase_sessions=1, view_to_cart_rate=R(1, 2), conversion_rate=R(1, 2), interest_rank=1, revenue_rank=1),
    dict(category_level="top", category="apparel", products=1, product_views=2, add_to_carts=1, cart_removals=0,
         purchases=0, units_sold=0, revenue=0, viewers=2, view_sessions=2, cart_sessions=1, purchase_sessions=0,
         view_to_cart_rate=R(1, 2), conversion_rate=0.0, interest_rank=2, revenue_rank=2),
    dict(category_level="top", category="electronics", products=2, product_views=4, add_to_carts=3,
         cart_removals=1, purchases=3, units_sold=3, revenue=700, viewers=2, view_sessions=3, cart_sessions=2,
         purchase_sessions=2, view_to_cart_rate=R(3, 4), conversion_rate=R(2, 3), interest_rank=1, revenue_rank=1),
])

# acme = P2 + P3: view sessions {A, D, B1, G} = 4, cart {A, D, B1} = 3, purchase {A, D} = 2, viewers {u1, a2, a6}.
EXPECTED["fct_funnel_brands"] = (["brand"], [
    dict(brand="acme", products=2, product_views=4, add_to_carts=3, cart_removals=1, checkouts=0, purchases=2,
         units_sold=2, revenue=200, viewers=3, view_sessions=4, cart_sessions=3, purchase_sessions=2,
         view_to_cart_rate=R(3, 4), cart_removal_rate=R(1, 3), session_view_to_cart_rate=R(3, 4),
         session_cart_to_purchase_rate=R(2, 3), conversion_rate=R(2, 4), interest_rank=1, revenue_rank=2),
    dict(brand="apple", products=1, product_views=2, add_to_carts=1, cart_removals=0, checkouts=0, purchases=1,
         units_sold=1, revenue=500, viewers=2, view_sessions=2, cart_sessions=1, purchase_sessions=1,
         view_to_cart_rate=R(1, 2), cart_removal_rate=0.0, session_view_to_cart_rate=R(1, 2),
         session_cart_to_purchase_rate=1.0, conversion_rate=R(1, 2), interest_rank=2, revenue_rank=1),
])

# Furthest steps over the 6 sessions: none E; product_view G; add_to_cart B1; begin_checkout B2; purchase A, D.
EXPECTED["fct_session_dropoff"] = (["funnel_step_rank"], [
    dict(funnel_step_rank=0, funnel_step="none", sessions_ended_at_step=1, sessions_reached_step=6,
         share_of_sessions=R(1, 6), avg_duration_seconds=180.0, avg_events=3.0, drop_off_rate=R(1, 6)),
    dict(funnel_step_rank=1, funnel_step="product_view", sessions_ended_at_step=1, sessions_reached_step=5,
         share_of_sessions=R(1, 6), avg_duration_seconds=1500.0, avg_events=3.0, drop_off_rate=R(1, 5)),
    dict(funnel_step_rank=2, funnel_step="add_to_cart", sessions_ended_at_step=1, sessions_reached_step=4,
         share_of_sessions=R(1, 6), avg_duration_seconds=600.0, avg_events=3.0, drop_off_rate=R(1, 4)),
    dict(funnel_step_rank=3, funnel_step="begin_checkout", sessions_ended_at_step=1, sessions_reached_step=3,
         share_of_sessions=R(1, 6), avg_duration_seconds=60.0, avg_events=2.0, drop_off_rate=R(1, 3)),
    dict(funnel_step_rank=4, funnel_step="purchase", sessions_ended_at_step=2, sessions_reached_step=2,
         share_of_sessions=R(2, 6), avg_duration_seconds=390.0, avg_events=7.0, drop_off_rate=None),
])

EXPECTED["dim_users"] = (["visitor_id"], [
    dict(visitor_id="a2", user_id=None, is_identified=False, anonymous_ids=1, first_seen_at="2024-03-10 12:00:00",
         last_seen_at="2024-03-10 12:51:00", first_session_date="2024-03-10", events=5, sessions=2, active_days=1,
         orders=0, revenue=0, is_buyer=False, buyer_segment="browser", loyalty_segment="one_time",
         first_channel="direct"),
    dict(visitor_id="a4", user_id=None, is_identified=False, anonymous_ids=1, first_seen_at="2024-03-11 15:00:00",
         last_seen_at="2024-03-11 15:03:00", first_session_date="2024-03-11", events=3, sessions=1, active_days=1,
         orders=0, revenue=0, is_buyer=False, buyer_segment="browser", loyalty_segment="one_time",
         first_channel="email"),
    dict(visitor_id="a6", user_id=None, is_identified=False, anonymous_ids=1, first_seen_at="2024-03-10 23:50:00",
         last_seen_at="2024-03-11 00:15:00", first_session_date="2024-03-10", events=3, sessions=1, active_days=1,
         orders=0, revenue=0, is_buyer=False, buyer_segment="browser", loyalty_segment="one_time",
         first_channel="organic_search"),
    dict(visitor_id="u1", user_id="u1", is_identified=True, anonymous_ids=2, first_seen_at="2024-03-10 10:00:00",
         last_seen_at="2024-03-11 09:05:00", first_session_date="2024-03-10", events=14, sessions=2, active_days=2,
         orders=2, revenue=700, is_buyer=True, buyer_segment="buyer", loyalty_segment="returning",
         first_channel="paid_search"),
])

EXPECTED["fct_user_segments_daily"] = (["activity_date", "recency_segment", "buyer_segment"], [
    dict(activity_date="2024-03-10", recency_segment="new", buyer_segment="browser", visitors=2, sessions=3,
         orders=0, revenue=0),
    dict(activity_date="2024-03-10", recency_segment="new", buyer_segment="buyer", visitors=1, sessions=1,
         orders=1, revenue=600),
    dict(activity_date="2024-03-11", recency_segment="new", buyer_segment="browser", visitors=1, sessions=1,
         orders=0, revenue=0),
    dict(activity_date="2024-03-11", recency_segment="returning", buyer_segment="buyer", visitors=1, sessions=1,
         orders=1, revenue=100),
])

# Raw rows: 03-10 A 12 + B 5 + C 2 + g01 = 20 (2 duplicates); 03-11 g02 g03 + D 4 + E 4 = 10.
# d04 arrived 22 h 55 min late (82500 s); the slowest other arrival is e10's 2 s (the kept e09 copy took 1 s).
EXPECTED["fct_data_quality_daily"] = (["event_date"], [
    dict(event_date="2024-03-10", raw_rows=20, distinct_events=18, duplicate_rows=2, bot_events=2,
         invalid_events=0, modelled_events=16, missing_product_events=0, missing_order_events=0,
         missing_identity_events=0, unknown_event_type_events=0, negative_amount_events=0,
         out_of_range_events=1, server_id_events=0, late_arrivals=0, max_arrival_delay_seconds=2),
    dict(event_date="2024-03-11", raw_rows=10, distinct_events=10, duplicate_rows=0, bot_events=0,
         invalid_events=1, modelled_events=9, missing_product_events=1, missing_order_events=0,
         missing_identity_events=0, unknown_event_type_events=0, negative_amount_events=0,
         out_of_range_events=0, server_id_events=0, late_arrivals=1, max_arrival_delay_seconds=82500),
])
