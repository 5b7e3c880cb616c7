"""Hand-written journeys loaded into the raw events table by the dbt tests.

The expected mart values in expected_marts.py were worked out by hand
from these rows (see the comments there); nothing here is computed by the models.

Journeys (all times UTC):
  A  anonymous a1 on desktop web, arrives from a paid search ad, views P1 and
     P2, carts both (2 x P2), removes one P2, logs in as u1 (mid-journey),
     checks out and buys P1 + P2 in one order O1 (two purchase lines).
     Client session id s-a1. e03 and e09 are delivered twice (retries).
  B  anonymous a2 on an iPhone, direct, never logs in. Views and carts P3,
     goes idle for 40 minutes (> 30: a new session), comes back to the cart
     and begins checkout, then leaves (drop-off at checkout). No client
     session id.
  C  a bot (is_bot) crawling two pages.
  G  anonymous a6 on Android, from Google organic search, starts at 23:50 and
     keeps browsing after midnight (one session across midnight). Its first
     event had a clamped (out-of-range) client time.
  D  u1 again the next day on another device (a3, logged in from the start),
     from Facebook, views, carts and buys P2 (order O2) without a
     begin_checkout. The purchase arrives late (received a day later): it is
     loaded only after the first dbt run (LATE_EVENTS).
  E  anonymous a4 from a newsletter: home page, a search, an invalid
     product_view (no product_id) and a custom newsletter_signup event.
"""

from __future__ import annotations

# (name, BigQuery type, DuckDB type, required)
COLUMNS = [
    ("event_id", "STRING", "VARCHAR", True),
    ("event_id_generated", "BOOL", "BOOLEAN", False),
    ("event_type", "STRING", "VARCHAR", True),
    ("event_name", "STRING", "VARCHAR", True),
    ("event_time", "TIMESTAMP", "TIMESTAMP", True),
    ("client_event_time", "TIMESTAMP", "TIMESTAMP", False),
    ("event_time_out_of_range", "BOOL", "BOOLEAN", True),
    ("sent_at", "TIMESTAMP", "TIMESTAMP", False),
    ("received_at", "TIMESTAMP", "TIMESTAMP", True),
    ("source_id", "STRING", "VARCHAR", True),
    ("anonymous_id", "STRING", "VARCHAR", False),
    ("user_id", "STRING", "VARCHAR", False),
    ("session_id", "STRING", "VARCHAR", False),
    ("page_url", "STRING", "VARCHAR", False),
    ("page_path", "STRING", "VARCHAR", False),
    ("page_referrer", "STRING", "VARCHAR", False),
    ("page_title", "STRING", "VARCHAR", False),
    ("product_id", "STRING", "VARCHAR", False),
    ("category_id", "STRING", "VARCHAR", False),
    ("category_code", "STRING", "VARCHAR", False),
    ("brand", "STRING", "VARCHAR", False),
    ("price", "NUMERIC", "DECIMAL(38,9)", False),
    ("currency", "STRING", "VARCHAR", False),
    ("quantity", "INT64", "BIGINT", False),
    ("order_id", "STRING", "VARCHAR", False),
    ("revenue", "NUMERIC", "DECIMAL(38,9)", False),
    ("order_currency", "STRING", "VARCHAR", False),
    ("search_query", "STRING", "VARCHAR", False),
    ("platform", "STRING", "VARCHAR", False),
    ("app_name", "STRING", "VARCHAR", False),
    ("app_version", "STRING", "VARCHAR", False),
    ("locale", "STRING", "VARCHAR", False),
    ("screen_width", "INT64", "BIGINT", False),
    ("screen_height", "INT64", "BIGINT", False),
    ("library_name", "STRING", "VARCHAR", False),
    ("library_version", "STRING", "VARCHAR", False),
    ("utm_source", "STRING", "VARCHAR", False),
    ("utm_medium", "STRING", "VARCHAR", False),
    ("utm_campaign", "STRING", "VARCHAR", False),
    ("utm_term", "STRING", "VARCHAR", False),
    ("utm_content", "STRING", "VARCHAR", False),
    ("ip_truncated", "STRING", "VARCHAR", False),
    ("user_agent", "STRING", "VARCHAR", False),
    ("ua_browser", "STRING", "VARCHAR", False),
    ("ua_browser_version", "STRING", "VARCHAR", False),
    ("ua_os", "STRING", "VARCHAR", False),
    ("ua_os_version", "STRING", "VARCHAR", False),
    ("ua_device_class", "STRING", "VARCHAR", False),
    ("is_bot", "BOOL", "BOOLEAN", True),
    ("properties", "STRING", "VARCHAR", False),
]
COLUMN_NAMES = [c[0] for c in COLUMNS]

P1 = dict(product_id="P1", category_id="c-11", category_code="electronics.smartphone", brand="apple", price="500", currency="EUR")
P2 = dict(product_id="P2", category_id="c-12", category_code="electronics.audio.headphone", brand="acme", price="100", currency="EUR")
P3 = dict(product_id="P3", category_id="c-21", category_code="apparel.shoes", brand="acme", price="80", currency="EUR")

DESKTOP = dict(platform="web", ua_browser="Firefox", ua_os="Linux", ua_device_class="desktop", screen_width=1920, screen_height=1080)
IPHONE = dict(platform="ios", app_name="shop", app_version="3.1.0", ua_os="iOS", ua_device_class="mobile", screen_width=390, screen_height=844)
ANDROID = dict(platform="android", app_name="shop", app_version="3.1.0", ua_os="Android", ua_device_class="mobile", screen_width=412, screen_height=915)


def ev(event_id, event_type, at, received=None, **fields):
    """One raw row; received_at defaults to event_time + 1 second."""
    row = {name: None for name in COLUMN_NAMES}
    row.update(
        event_id=event_id,
        event_id_generated=False,
        event_type=event_type,
        event_name=event_type,
        event_time=at,
        client_event_time=at,
        event_time_out_of_range=False,
        sent_at=at,
        received_at=received or at[:-2] + "%02d" % (int(at[-2:]) + 1),
        source_id="web-shop",
        library_name="clickstream-js",
        library_version="1.0.0",
        locale="en-GB",
        ip_truncated="203.0.113.0",
        user_agent="Mozilla/5.0",
        is_bot=False,
        properties="{}",
    )
    row.update(fields)
    return row


D1 = "2024-03-10 "
D2 = "2024-03-11 "

A = dict(anonymous_id="a1", session_id="s-a1", **DESKTOP)
A_UTM = dict(utm_source="google", utm_medium="cpc", utm_campaign="spring")
B = dict(anonymous_id="a2", **IPHONE)
G = dict(anonymous_id="a6", **ANDROID)
D = dict(anonymous_id="a3", user_id="u1", session_id="s-d1", **IPHONE)
E = dict(anonymous_id="a4", session_id="s-e1", **DESKTOP)

EVENTS = [
    # --- A: 10 distinct events, 12 rows -------------------------------------
    ev("e01", "page_view", D1 + "10:00:00", page_path="/home", page_url="https://shop.example.com/home", **A, **A_UTM),
    ev("e02", "product_view", D1 + "10:01:00", page_path="/p/p1", **A, **P1),
    ev("e03", "add_to_cart", D1 + "10:02:00", page_path="/p/p1", quantity=1, **A, **P1),
    # retry of e03, received later: the copy received first is kept
    ev("e03", "add_to_cart", D1 + "10:02:00", received=D1 + "10:02:31", page_path="/p/p1", quantity=1, **A, **P1),
    ev("e04", "product_view", D1 + "10:03:00", page_path="/p/p2", **A, **P2),
    ev("e05", "add_to_cart", D1 + "10:04:00", page_path="/p/p2", quantity=2, **A, **P2),
    ev("e06", "remove_from_cart", D1 + "10:05:00", page_path="/cart", quantity=1, **A, **P2),
    # the login: from here on the events carry user_id u1
    ev("e07", "page_view", D1 + "10:06:00", page_path="/login", user_id="u1", **A),
    ev("e08", "begin_checkout", D1 + "10:07:00", page_path="/checkout", user_id="u1", **A),
    ev("e09", "purchase", D1 + "10:08:00", page_path="/checkout/complete", user_id="u1", quantity=1,
       order_id="O1", revenue="500", order_currency="EUR", **A, **P1),
    ev("e09", "purchase", D1 + "10:08:00", received=D1 + "10:09:00", page_path="/checkout/complete", user_id="u1",
       quantity=1, order_id="O1", revenue="500", order_currency="EUR", **A, **P1),
    ev("e10", "purchase", D1 + "10:08:00", received=D1 + "10:08:02", page_path="/checkout/complete", user_id="u1",
       quantity=1, order_id="O1", revenue="100", order_currency="EUR", **A, **P2),
    # --- B: two sessions split by 40 minutes of inactivity --------------------
    ev("b01", "page_view", D1 + "12:00:00", page_path="/home", **B),
    ev("b02", "product_view", D1 + "12:05:00", page_path="/p/p3", **B, **P3),
    ev("b03", "add_to_cart", D1 + "12:10:00", page_path="/p/p3", quantity=1, **B, **P3),
    ev("b04", "page_view", D1 + "12:50:00", page_path="/cart", **B),
    ev("b05", "begin_checkout", D1 + "12:51:00", page_path="/checkout", **B),
    # --- C: a bot --------------------------------------------------------------
    ev("c01", "page_view", D1 + "14:00:00", page_path="/home", anonymous_id="bot1", is_bot=True,
       ua_device_class="bot", user_agent="Googlebot/2.1"),
    ev("c02", "product_view", D1 + "14:00:10", page_path="/p/p1", anonymous_id="bot1", is_bot=True,
       ua_device_class="bot", user_agent="Googlebot/2.1", **P1),
    # --- G: one session across midnight ---------------------------------------
    ev("g01", "page_view", D1 + "23:50:00", page_path="/home", page_referrer="https://www.google.com/",
       event_time_out_of_range=True, client_event_time="2030-01-01 00:00:00", **G),
    ev("g02", "product_view", D2 + "00:05:00", page_path="/p/p1", **G, **P1),
    ev("g03", "product_view", D2 + "00:15:00", page_path="/p/p3", **G, **P3),
    # --- D: returning u1 on another device (the purchase is in LATE_EVENTS) --
    ev("d01", "page_view", D2 + "09:00:00", page_path="/home", page_referrer="https://www.facebook.com/", **D),
    ev("d02", "product_view", D2 + "09:02:00", page_path="/p/p2", **D, **P2),
    ev("d03", "add_to_cart", D2 + "09:03:00", page_path="/p/p2", quantity=1, **D, **P2),
    # --- E: newsletter visitor with an invalid event ------------------------------
    ev("x01", "page_view", D2 + "15:00:00", page_path="/home", utm_source="newsletter", utm_medium="email", **E),
    ev("x02", "search", D2 + "15:01:00", page_path="/search", search_query="shoes", **E),
    ev("x03", "product_view", D2 + "15:02:00", page_path="/p/unknown", **E),  # invalid: no product_id
    ev("x04", "custom", D2 + "15:03:00", page_path="/home", event_name="newsletter_signup", **E),
]

# Loaded after the first dbt run: a purchase made offline in the app that
# reached the collector ~23 hours later (its day, 2024-03-11, is re-loaded).
LATE_EVENTS = [
    ev("d04", "purchase", D2 + "09:05:00", received="2024-03-12 08:00:00", page_path="/checkout/complete",
       quantity=1, order_id="O2", revenue="100", order_currency="EUR", **D, **P2),
]

# End of the fallback window (used only without _partition_loads rows) for the test runs.
RUN_DATE = "2024-03-12"


# --- Late data far outside any window ------------------------------------------
# Loaded after the marts above were checked, to prove that the hourly build
# takes late data however old: the newest data is now 2024-03-21 (journey F),
# and two rows arrive for 2024-03-10, eleven days earlier.
D3 = "2024-03-21 "
F = dict(anonymous_id="a7", **DESKTOP)
LATE_RECEIVED = D3 + "10:30:00"

FAR_LATE_EVENTS = [
    # F: today's traffic, a new visitor
    ev("f01", "page_view", D3 + "10:00:00", page_path="/home", **F),
    ev("f02", "product_view", D3 + "10:02:00", page_path="/p/p3", **F, **P3),
    ev("f03", "page_view", D3 + "10:05:00", page_path="/sale", **F),
    # A late event from a6's offline queue, inside the session that crosses
    # midnight (23:50 -> 00:15): it changes that session (4 events) and the
    # position of its events after midnight, in the next day's partition.
    ev("g00", "product_view", D1 + "23:55:00", received=LATE_RECEIVED, page_path="/p/p2", **G, **P2),
    # A retry of g02 (kept: event_time 2024-03-11 00:05:00, received 00:05:01)
    # whose skew-corrected event_time falls before midnight: the copy lands in
    # the 2024-03-10 partition, the kept copy stays on 2024-03-11 and now
    # counts 2 copies (a duplicate row on 2024-03-11 in data quality).
    ev("g02", "product_view", D1 + "23:59:59", received=LATE_RECEIVED, page_path="/p/p1", **G, **P1),
]

# --- A late login ----------------------------------------------------------------
# a2 (anonymous on 2024-03-10, two sessions) comes back on 2024-03-21 and logs
# in as u7: the nightly re-stitching attributes its 2024-03-10 events to u7,
# eleven days after they were built.
LATE_LOGIN_EVENTS = [
    ev("b06", "page_view", D3 + "11:00:00", page_path="/login", user_id="u7", **B),
]
