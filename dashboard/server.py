#!/usr/bin/env python3
"""Local analytics dashboard for the clickstream DuckDB warehouse.

Serves dashboard/web/ (the page) and JSON endpoints over the dbt marts in the
`analytics` schema. Standard library only, plus the `duckdb` package of the
project venv (the same DuckDB that dbt used to write the file):

    .venv/bin/python dashboard/server.py --duckdb .clickstream/warehouse.duckdb \
        --listen 127.0.0.1:8050

Every request opens its own read-only connection (DuckDB cannot open a file
read-only while another process holds the write lock, e.g. during a dbt run:
the open is retried briefly, then the API answers 503). A missing warehouse
file or mart is a 503 with a JSON body naming the file / the marts.

Date filters: `from` and `to` (YYYY-MM-DD, inclusive) on every /api/ endpoint;
both default to the data's first / last day. Marts with a date grain are
filtered on it. The all-time marts (fct_product_performance,
fct_funnel_categories, fct_funnel_brands, fct_session_dropoff) are read as-is
when the range covers every day of data; for a narrower range the same
definitions (dbt/macros/funnel.sql) are applied to the date-grained model they
are built from (int_events__sessionized, fct_sessions), and the response says
so (`source: "derived"`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import mimetypes
import os
import sys
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb

DASHBOARD_DIR = Path(__file__).resolve().parent
REPO_ROOT = DASHBOARD_DIR.parent
WEB_DIR = DASHBOARD_DIR / "web"
DEFAULT_DUCKDB = REPO_ROOT / ".clickstream" / "warehouse.duckdb"
DEFAULT_LISTEN = "127.0.0.1:8050"
DEFAULT_SCHEMA = "analytics"

# Opening read-only fails while a writer (dbt, the loader) holds the file lock.
CONNECT_ATTEMPTS = 6
CONNECT_BACKOFF_SECONDS = 0.25

FUNNEL_STEPS = [(0, "none"), (1, "product_view"), (2, "add_to_cart"), (3, "begin_checkout"), (4, "purchase")]
LAST_FUNNEL_RANK = FUNNEL_STEPS[-1][0]


class Unavailable(Exception):
    """The warehouse (or a mart) cannot be read: answered with HTTP 503."""

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


class BadRequest(Exception):
    pass


# --------------------------------------------------------------------------- SQL helpers


def ratio(num: str, den: str) -> str:
    """dbt's safe_ratio on DuckDB: a float, null when the denominator is 0 or null."""
    return f"cast({num} as double) / nullif(cast({den} as double), 0)"


def flag(cond: str) -> str:
    return f"case when {cond} then 1 else 0 end"


# dbt/macros/funnel.sql: product_funnel_aggregates() and product_funnel_rates()
PRODUCT_AGGREGATES = f"""
    sum({flag("event_type = 'product_view'")}) as product_views,
    sum({flag("event_type = 'add_to_cart'")}) as add_to_carts,
    sum({flag("event_type = 'remove_from_cart'")}) as cart_removals,
    sum({flag("event_type = 'begin_checkout'")}) as checkouts,
    sum({flag("event_type = 'purchase'")}) as purchases,
    coalesce(sum(case when event_type = 'purchase' then coalesce(quantity, 1) end), 0) as units_sold,
    coalesce(sum(case when event_type = 'purchase' then revenue end), 0) as revenue,
    count(distinct case when event_type = 'product_view' then visitor_id end) as viewers,
    count(distinct case when event_type = 'product_view' then session_id end) as view_sessions,
    count(distinct case when event_type = 'add_to_cart' then session_id end) as cart_sessions,
    count(distinct case when event_type = 'purchase' then session_id end) as purchase_sessions
"""
PRODUCT_RATES = f"""
    {ratio('add_to_carts', 'product_views')} as view_to_cart_rate,
    {ratio('cart_removals', 'add_to_carts')} as cart_removal_rate,
    {ratio('cart_sessions', 'view_sessions')} as session_view_to_cart_rate,
    {ratio('purchase_sessions', 'cart_sessions')} as session_cart_to_purchase_rate,
    {ratio('purchase_sessions', 'view_sessions')} as conversion_rate
"""
FUNNEL_COLUMNS = """product_views, add_to_carts, cart_removals, checkouts, purchases, units_sold, revenue,
    viewers, view_sessions, cart_sessions, purchase_sessions, view_to_cart_rate, cart_removal_rate,
    session_view_to_cart_rate, session_cart_to_purchase_rate, conversion_rate"""


def to_json_value(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def rows_as_dicts(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [{n: to_json_value(v) for n, v in zip(names, row)} for row in cursor.fetchall()]


def parse_date(value: str | None, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"'{name}' must be a date YYYY-MM-DD, got {value!r}") from None


# --------------------------------------------------------------------------- the warehouse


class Warehouse:
    def __init__(self, path: Path, schema: str = DEFAULT_SCHEMA):
        self.path = Path(path)
        self.schema = schema

    def t(self, name: str) -> str:
        return f'"{self.schema}"."{name}"'

    def connect(self):
        if not self.path.is_file():
            raise Unavailable(
                f"DuckDB warehouse not found: {self.path}. Build it with the pipeline and "
                f"`dbt build` (dbt/README.md), or point --duckdb / CLICKSTREAM_DUCKDB_PATH at it.",
                path=str(self.path),
            )
        last = None
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                return duckdb.connect(str(self.path), read_only=True)
            except duckdb.Error as exc:  # typically the write lock held by dbt or the loader
                last = exc
                time.sleep(CONNECT_BACKOFF_SECONDS * (attempt + 1))
        raise Unavailable(
            f"cannot open DuckDB warehouse {self.path} read-only (is dbt or the loader writing to it?): {last}",
            path=str(self.path),
        )

    def require(self, con, *marts: str) -> None:
        present = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [self.schema]
            ).fetchall()
        }
        missing = [m for m in marts if m not in present]
        if missing:
            raise Unavailable(
                f"missing in {self.path}: {', '.join(f'{self.schema}.{m}' for m in missing)}. "
                f"Run `dbt build` (dbt/README.md) against this file.",
                path=str(self.path),
                missing=[f"{self.schema}.{m}" for m in missing],
            )

    # ---- date range

    def data_range(self, con) -> tuple[dt.date | None, dt.date | None]:
        self.require(con, "fct_traffic_daily", "fct_funnel_daily")
        lo, hi = con.execute(
            f"""select min(d), max(d) from (
                    select event_date as d from {self.t('fct_traffic_daily')}
                    union all
                    select funnel_date as d from {self.t('fct_funnel_daily')}
                ) as days"""
        ).fetchall()[0]
        return lo, hi

    def resolve_range(self, con, params: dict) -> tuple[dt.date, dt.date, bool]:
        """(from, to, covers_all_data). Defaults: the data's first/last day."""
        lo, hi = self.data_range(con)
        start = parse_date(params.get("from"), "from") or lo or dt.date.today()
        end = parse_date(params.get("to"), "to") or hi or dt.date.today()
        if start > end:
            raise BadRequest(f"'from' ({start}) is after 'to' ({end})")
        covers_all = lo is None or (start <= lo and end >= hi)
        return start, end, covers_all

    # ---- endpoints

    def date_range(self, con, params) -> dict:
        lo, hi = self.data_range(con)
        return {"min": to_json_value(lo), "max": to_json_value(hi),
                "days": (hi - lo).days + 1 if lo and hi else 0}

    def _summary_for(self, con, start, end) -> dict:
        events, page_views, product_views, sessions, days, avg_secs, bounce = con.execute(
            f"""select coalesce(sum(events), 0), coalesce(sum(page_views), 0), coalesce(sum(product_views), 0),
                       coalesce(sum(sessions), 0), count(*),
                       sum(avg_session_seconds * sessions) / nullif(sum(sessions), 0),
                       sum(bounce_rate * sessions) / nullif(sum(sessions), 0)
                from {self.t('fct_traffic_daily')} where event_date between ? and ?""",
            [start, end],
        ).fetchall()[0]
        visitors = con.execute(
            f"""select count(distinct visitor_id) from {self.t('fct_sessions')}
                where not is_quarantined and session_date between ? and ?""",
            [start, end],
        ).fetchall()[0][0]
        orders, revenue, currency = con.execute(
            f"""select count(*), coalesce(sum(revenue), 0), mode(currency)
                from {self.t('fct_orders')} where order_date between ? and ?""",
            [start, end],
        ).fetchall()[0]
        funnel_sessions, purchase_sessions = con.execute(
            f"""select coalesce(sum(sessions), 0), coalesce(sum(sessions_reached_purchase), 0)
                from {self.t('fct_funnel_daily')} where funnel_date between ? and ?""",
            [start, end],
        ).fetchall()[0]
        revenue = float(revenue)
        return {
            "events": int(events),
            "page_views": int(page_views),
            "product_views": int(product_views),
            "sessions": int(sessions),
            "visitors": int(visitors),
            "orders": int(orders),
            "revenue": revenue,
            "currency": currency,
            "average_order_value": revenue / orders if orders else None,
            "conversion_rate": purchase_sessions / funnel_sessions if funnel_sessions else None,
            "avg_session_seconds": to_json_value(avg_secs),
            "bounce_rate": to_json_value(bounce),
            "days_with_data": int(days),
        }

    def summary(self, con, params) -> dict:
        self.require(con, "fct_traffic_daily", "fct_sessions", "fct_orders", "fct_funnel_daily")
        start, end, _ = self.resolve_range(con, params)
        length = (end - start).days + 1
        prev_end = start - dt.timedelta(days=1)
        prev_start = prev_end - dt.timedelta(days=length - 1)
        return {
            "from": start.isoformat(), "to": end.isoformat(),
            "kpis": self._summary_for(con, start, end),
            "previous": {"from": prev_start.isoformat(), "to": prev_end.isoformat(),
                         "kpis": self._summary_for(con, prev_start, prev_end)},
        }

    def traffic(self, con, params) -> dict:
        self.require(con, "fct_traffic_daily", "fct_traffic_hourly", "fct_events_daily")
        start, end, _ = self.resolve_range(con, params)
        rng = [start, end]
        daily = rows_as_dicts(con.execute(
            f"""select event_date, events, page_views, product_views, visitors, sessions, orders, revenue,
                       avg_session_seconds, bounce_rate, peak_hour, peak_hour_of_day, peak_hour_events
                from {self.t('fct_traffic_daily')} where event_date between ? and ? order by event_date""", rng))
        by_hour = {r["hour_of_day"]: r for r in rows_as_dicts(con.execute(
            f"""select hour_of_day, sum(events) as events, sum(page_views) as page_views,
                       sum(product_views) as product_views, sum(purchase_events) as purchase_events,
                       sum(active_sessions) as active_sessions
                from {self.t('fct_traffic_hourly')} where event_date between ? and ?
                group by hour_of_day""", rng))}
        hourly = [by_hour.get(h, {"hour_of_day": h, "events": 0, "page_views": 0, "product_views": 0,
                                  "purchase_events": 0, "active_sessions": 0}) for h in range(24)]
        peak_profile = max(hourly, key=lambda r: (r["events"], -r["hour_of_day"])) if by_hour else None
        peak = rows_as_dicts(con.execute(
            f"""select event_date, event_hour, hour_of_day, events from {self.t('fct_traffic_hourly')}
                where event_date between ? and ? order by events desc, event_hour limit 1""", rng))
        event_types = rows_as_dicts(con.execute(
            f"""select event_type, sum(events) as events from {self.t('fct_events_daily')}
                where event_date between ? and ? group by event_type order by events desc, event_type""", rng))
        return {
            "from": start.isoformat(), "to": end.isoformat(),
            "daily": daily,
            "hourly": hourly,
            "peak_hour_of_day": peak_profile["hour_of_day"] if peak_profile else None,
            "peak_hour": peak[0] if peak else None,
            "event_types": event_types,
        }

    def funnel(self, con, params) -> dict:
        self.require(con, "fct_funnel_daily")
        start, end, _ = self.resolve_range(con, params)
        cur = con.execute(
            f"""select coalesce(sum(sessions), 0) as sessions,
                       coalesce(sum(sessions_reached_product_view), 0) as product_view,
                       coalesce(sum(sessions_reached_add_to_cart), 0) as add_to_cart,
                       coalesce(sum(sessions_reached_begin_checkout), 0) as begin_checkout,
                       coalesce(sum(sessions_reached_purchase), 0) as purchase,
                       coalesce(sum(product_view_events), 0) as product_view_events,
                       coalesce(sum(add_to_cart_events), 0) as add_to_cart_events,
                       coalesce(sum(begin_checkout_events), 0) as begin_checkout_events,
                       coalesce(sum(orders), 0) as orders,
                       coalesce(sum(revenue), 0) as revenue
                from {self.t('fct_funnel_daily')} where funnel_date between ? and ?""", [start, end])
        totals = rows_as_dicts(cur)[0]
        labels = [("sessions", "Sessions"), ("product_view", "Viewed a product"), ("add_to_cart", "Added to cart"),
                  ("begin_checkout", "Began checkout"), ("purchase", "Purchased")]
        event_counts = {"product_view": "product_view_events", "add_to_cart": "add_to_cart_events",
                        "begin_checkout": "begin_checkout_events", "purchase": "orders"}
        steps, previous = [], None
        for key, label in labels:
            n = int(totals[key])
            conv = (n / previous if previous else None) if previous is not None else None
            steps.append({
                "step": key, "label": label, "sessions": n,
                "events": int(totals[event_counts[key]]) if key in event_counts else None,
                "step_conversion": conv,
                "drop_off": (1 - conv) if conv is not None else None,
                "share_of_sessions": n / totals["sessions"] if totals["sessions"] else None,
            })
            previous = n
        daily = rows_as_dicts(con.execute(
            f"""select funnel_date, sessions, sessions_reached_purchase, session_conversion_rate,
                       view_to_cart_rate, cart_to_checkout_rate, checkout_to_purchase_rate
                from {self.t('fct_funnel_daily')} where funnel_date between ? and ? order by funnel_date""",
            [start, end]))
        return {"from": start.isoformat(), "to": end.isoformat(), "steps": steps,
                "orders": int(totals["orders"]), "revenue": float(totals["revenue"]), "daily": daily}

    def products(self, con, params) -> dict:
        self.require(con, "fct_product_performance", "int_events__sessionized")
        start, end, covers_all = self.resolve_range(con, params)
        if covers_all:
            sql = f"""select product_id, category_code, category_top, brand, {FUNNEL_COLUMNS}, revenue_rank, views_rank
                      from {self.t('fct_product_performance')}"""
            args = []
        else:
            sql = f"""with product_events as (
                          select * from {self.t('int_events__sessionized')}
                          where product_id is not null and event_date between ? and ?),
                      aggregated as (select product_id, {PRODUCT_AGGREGATES} from product_events group by product_id),
                      with_rates as (select aggregated.*, {PRODUCT_RATES} from aggregated)
                      select r.product_id, p.category_code, p.category_top, p.brand,
                             {', '.join('r.' + c.strip() for c in FUNNEL_COLUMNS.split(','))},
                             rank() over (order by r.revenue desc) as revenue_rank,
                             rank() over (order by r.product_views desc) as views_rank
                      from with_rates as r
                      left join {self.t('fct_product_performance')} as p on r.product_id = p.product_id"""
            args = [start, end]
        rows = rows_as_dicts(con.execute(sql + " order by revenue desc, product_views desc, product_id", args))
        return {"from": start.isoformat(), "to": end.isoformat(),
                "source": "mart" if covers_all else "derived", "rows": rows}

    def categories(self, con, params) -> dict:
        self.require(con, "fct_funnel_categories", "int_events__sessionized")
        level = params.get("level", "top")
        if level not in ("top", "leaf"):
            raise BadRequest("'level' must be 'top' or 'leaf'")
        start, end, covers_all = self.resolve_range(con, params)
        if covers_all:
            sql = f"""select category_level, category, products, {FUNNEL_COLUMNS}, interest_rank, revenue_rank
                      from {self.t('fct_funnel_categories')} where category_level = ?"""
            args = [level]
        else:
            column = "category_top" if level == "top" else "category_code"
            sql = f"""with product_events as (
                          select * from {self.t('int_events__sessionized')}
                          where product_id is not null and category_code is not null
                            and event_date between ? and ?),
                      aggregated as (
                          select ? as category_level, {column} as category, count(distinct product_id) as products,
                                 {PRODUCT_AGGREGATES}
                          from product_events group by {column})
                      select aggregated.*, {PRODUCT_RATES},
                             rank() over (order by view_sessions desc) as interest_rank,
                             rank() over (order by revenue desc) as revenue_rank
                      from aggregated"""
            args = [start, end, level]
        rows = rows_as_dicts(con.execute(sql + " order by view_sessions desc, revenue desc, category", args))
        return {"from": start.isoformat(), "to": end.isoformat(), "level": level,
                "source": "mart" if covers_all else "derived", "rows": rows}

    def brands(self, con, params) -> dict:
        self.require(con, "fct_funnel_brands", "int_events__sessionized")
        start, end, covers_all = self.resolve_range(con, params)
        if covers_all:
            sql = f"""select brand, products, {FUNNEL_COLUMNS}, interest_rank, revenue_rank
                      from {self.t('fct_funnel_brands')}"""
            args = []
        else:
            sql = f"""with product_events as (
                          select * from {self.t('int_events__sessionized')}
                          where product_id is not null and brand is not null and event_date between ? and ?),
                      aggregated as (
                          select brand, count(distinct product_id) as products, {PRODUCT_AGGREGATES}
                          from product_events group by brand)
                      select aggregated.*, {PRODUCT_RATES},
                             rank() over (order by view_sessions desc) as interest_rank,
                             rank() over (order by revenue desc) as revenue_rank
                      from aggregated"""
            args = [start, end]
        rows = rows_as_dicts(con.execute(sql + " order by revenue desc, view_sessions desc, brand", args))
        return {"from": start.isoformat(), "to": end.isoformat(),
                "source": "mart" if covers_all else "derived", "rows": rows}

    def dropoff(self, con, params) -> dict:
        self.require(con, "fct_session_dropoff", "fct_sessions")
        start, end, covers_all = self.resolve_range(con, params)
        cols = """funnel_step_rank, funnel_step, sessions_ended_at_step, sessions_reached_step,
                  share_of_sessions, avg_duration_seconds, avg_events"""
        if covers_all:
            rows = rows_as_dicts(con.execute(
                f"select {cols}, drop_off_rate from {self.t('fct_session_dropoff')} order by funnel_step_rank"))
        else:
            steps = " union all ".join(f"select {r} as funnel_step_rank, '{n}' as funnel_step" for r, n in FUNNEL_STEPS)
            rows = rows_as_dicts(con.execute(
                f"""with sessions as (
                        select * from {self.t('fct_sessions')}
                        where not is_quarantined and session_date between ? and ?),
                    steps as ({steps}),
                    ended_at_step as (
                        select furthest_funnel_step_rank, count(*) as sessions,
                               sum(duration_seconds) as total_duration_seconds, sum(events) as total_events
                        from sessions group by furthest_funnel_step_rank),
                    totals as (select count(*) as all_sessions from sessions),
                    final as (
                        select steps.funnel_step_rank, steps.funnel_step,
                               coalesce(e.sessions, 0) as sessions_ended_at_step,
                               sum(coalesce(e.sessions, 0)) over (
                                   order by steps.funnel_step_rank desc
                                   rows between unbounded preceding and current row) as sessions_reached_step,
                               {ratio('coalesce(e.sessions, 0)', 'totals.all_sessions')} as share_of_sessions,
                               {ratio('e.total_duration_seconds', 'e.sessions')} as avg_duration_seconds,
                               {ratio('e.total_events', 'e.sessions')} as avg_events
                        from steps cross join totals
                        left join ended_at_step as e on steps.funnel_step_rank = e.furthest_funnel_step_rank)
                    select {cols},
                           case when funnel_step_rank < {LAST_FUNNEL_RANK}
                                then {ratio('sessions_ended_at_step', 'sessions_reached_step')} end as drop_off_rate
                    from final order by funnel_step_rank""", [start, end]))
        return {"from": start.isoformat(), "to": end.isoformat(),
                "source": "mart" if covers_all else "derived", "rows": rows}

    def sessions(self, con, params) -> dict:
        self.require(con, "fct_sessions")
        start, end, _ = self.resolve_range(con, params)
        base = f"""from {self.t('fct_sessions')} where not is_quarantined and session_date between ? and ?"""
        rng = [start, end]
        totals = rows_as_dicts(con.execute(
            f"""select count(*) as sessions, avg(duration_seconds) as avg_duration_seconds,
                       median(duration_seconds) as median_duration_seconds,
                       avg(events) as avg_events, avg(page_views + product_views) as avg_pages,
                       {ratio('sum(' + flag('events = 1') + ')', 'count(*)')} as bounce_rate,
                       {ratio('sum(' + flag('has_purchase') + ')', 'count(*)')} as conversion_rate,
                       coalesce(sum(revenue), 0) as revenue
                {base}""", rng))[0]
        def histogram(column: str, edges: list[int], labels: list[str]) -> list[dict]:
            cases = " ".join(f"when {column} < {e} then {i}" for i, e in enumerate(edges))
            counts = dict(con.execute(
                f"select case {cases} else {len(edges)} end as b, count(*) {base} group by b", rng).fetchall())
            return [{"bucket": label, "sessions": int(counts.get(i, 0))} for i, label in enumerate(labels)]

        duration = histogram("duration_seconds", [60, 300, 900, 1800],
                             ["< 1 min", "1–5 min", "5–15 min", "15–30 min", "30+ min"])
        depth = histogram("events", [2, 4, 7, 11], ["1", "2–3", "4–6", "7–10", "11+"])
        channels = rows_as_dicts(con.execute(
            f"""select channel, count(*) as sessions, sum(orders) as orders, coalesce(sum(revenue), 0) as revenue,
                       {ratio('sum(' + flag('has_purchase') + ')', 'count(*)')} as conversion_rate,
                       avg(duration_seconds) as avg_duration_seconds
                {base} group by channel order by sessions desc, channel""", rng))
        devices = rows_as_dicts(con.execute(
            f"""select coalesce(device_class, 'unknown') as device_class, count(*) as sessions,
                       {ratio('sum(' + flag('has_purchase') + ')', 'count(*)')} as conversion_rate
                {base} group by 1 order by sessions desc, 1""", rng))
        exit_pages = rows_as_dicts(con.execute(
            f"""select exit_page, count(*) as sessions {base} and exit_page is not null
                group by exit_page order by sessions desc, exit_page limit 8""", rng))
        return {"from": start.isoformat(), "to": end.isoformat(), "totals": totals, "duration": duration,
                "depth": depth, "channels": channels, "devices": devices, "exit_pages": exit_pages}

    def freshness(self, con, params) -> dict:
        """How fresh the marts are: the newest event they hold, the newest event loaded (raw),
        and when dbt last built a model (the partition log, macros/partition_log.sql)."""
        self.require(con, "fct_sessions")
        newest_modelled = con.execute(f"select max(session_end_at) from {self.t('fct_sessions')}").fetchone()[0]
        newest_loaded = last_build = None
        tables = {(r[0], r[1]) for r in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
        if ("raw", "events") in tables:
            newest_loaded = con.execute("select max(event_time) from raw.events").fetchone()[0]
        if (self.schema, "_partition_builds") in tables:
            last_build = con.execute(f"select max(built_at) from {self.t('_partition_builds')}").fetchone()[0]
        return {"newest_event": to_json_value(newest_modelled), "newest_loaded_event": to_json_value(newest_loaded),
                "last_dbt_build": to_json_value(last_build),
                "now": to_json_value(dt.datetime.now(dt.timezone.utc))}

    def recent_sessions(self, con, params) -> dict:
        """The latest sessions, newest first (at most `limit`, default 12): what a live run shows
        arriving."""
        self.require(con, "fct_sessions")
        try:
            limit = max(1, min(50, int(params.get("limit", 12))))
        except ValueError:
            raise BadRequest("limit must be a whole number") from None
        rows = rows_as_dicts(con.execute(
            f"""select session_id, device_key, session_start_at, session_end_at, events, channel, device_class,
                       furthest_funnel_step, orders, revenue
                from {self.t('fct_sessions')} order by session_end_at desc, session_id limit ?""", [limit]))
        return {"rows": rows}

    def health(self) -> dict:
        info = {"path": str(self.path), "schema": self.schema, "exists": self.path.is_file()}
        try:
            con = self.connect()
            try:
                self.require(con, *ALL_MARTS)
                lo, hi = self.data_range(con)
                info.update(ok=True, min=to_json_value(lo), max=to_json_value(hi))
            finally:
                con.close()
        except Unavailable as exc:
            info.update(ok=False, error=str(exc), **exc.details)
        return info


ALL_MARTS = ["fct_traffic_daily", "fct_traffic_hourly", "fct_events_daily", "fct_funnel_daily",
             "fct_product_performance", "fct_funnel_categories", "fct_funnel_brands", "fct_session_dropoff",
             "fct_sessions", "fct_orders"]

API = {
    "/api/date-range": Warehouse.date_range,
    "/api/summary": Warehouse.summary,
    "/api/traffic": Warehouse.traffic,
    "/api/funnel": Warehouse.funnel,
    "/api/products": Warehouse.products,
    "/api/categories": Warehouse.categories,
    "/api/brands": Warehouse.brands,
    "/api/dropoff": Warehouse.dropoff,
    "/api/sessions": Warehouse.sessions,
    "/api/freshness": Warehouse.freshness,
    "/api/recent-sessions": Warehouse.recent_sessions,
}


# --------------------------------------------------------------------------- HTTP


class Handler(BaseHTTPRequestHandler):
    server_version = "clickstream-dashboard/0.1"
    warehouse: Warehouse  # set on the subclass made by make_server()
    quiet = False

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("%s - %s\n" % (self.log_date_time_string(), fmt % args))

    def send_json(self, status: int, body) -> None:
        data = json.dumps(body, default=to_json_value, allow_nan=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        try:
            if url.path == "/healthz":
                self.send_json(HTTPStatus.OK, {"status": "ok", "warehouse": self.warehouse.health()})
            elif url.path in API:
                con = self.warehouse.connect()
                try:
                    body = API[url.path](self.warehouse, con, params)
                finally:
                    con.close()
                self.send_json(HTTPStatus.OK, body)
            elif url.path.startswith("/api/"):
                self.send_json(HTTPStatus.NOT_FOUND, {"error": f"unknown endpoint {url.path}",
                                                      "endpoints": sorted(API)})
            else:
                self.serve_static(url.path)
        except BadRequest as exc:
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except Unavailable as exc:
            self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc), **exc.details})
        except duckdb.CatalogException as exc:  # a mart lost a column, or a race with a dbt run
            self.send_json(HTTPStatus.SERVICE_UNAVAILABLE,
                           {"error": f"cannot read the marts in {self.warehouse.path}: {exc}",
                            "path": str(self.warehouse.path)})
        except BrokenPipeError:
            pass
        except Exception as exc:  # noqa: BLE001 - answer instead of dropping the connection
            self.log_message("error on %s: %r", self.path, exc)
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})

    def serve_static(self, path: str) -> None:
        rel = urllib.parse.unquote(path).lstrip("/") or "index.html"
        target = (WEB_DIR / rel).resolve()
        if WEB_DIR.resolve() not in target.parents or not target.is_file():
            if rel.startswith("vendor/"):
                msg = b"missing vendored chart library: run `bash dashboard/scripts/build.sh`\n"
            else:
                msg = b"not found\n"
            self.send_response(HTTPStatus.NOT_FOUND)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        data = target.read_bytes()
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "text/javascript"):
            ctype += "; charset=utf-8"
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(data)


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"--listen must be HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def make_server(duckdb_path: Path, listen: str, schema: str = DEFAULT_SCHEMA, quiet: bool = False):
    handler = type("DashboardHandler", (Handler,), {"warehouse": Warehouse(duckdb_path, schema), "quiet": quiet})
    server = ThreadingHTTPServer(parse_listen(listen), handler)
    server.daemon_threads = True
    return server


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duckdb", default=os.environ.get("CLICKSTREAM_DUCKDB_PATH", str(DEFAULT_DUCKDB)),
                        help="warehouse file (env CLICKSTREAM_DUCKDB_PATH; default .clickstream/warehouse.duckdb)")
    parser.add_argument("--listen", default=os.environ.get("CLICKSTREAM_DASHBOARD_LISTEN", DEFAULT_LISTEN),
                        help="HOST:PORT (env CLICKSTREAM_DASHBOARD_LISTEN; default 127.0.0.1:8050; port 0 = any free)")
    parser.add_argument("--schema", default=os.environ.get("CLICKSTREAM_DBT_SCHEMA", DEFAULT_SCHEMA),
                        help="schema of the dbt marts (env CLICKSTREAM_DBT_SCHEMA; default analytics)")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)

    path = Path(args.duckdb).expanduser()
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    server = make_server(path, args.listen, args.schema, args.quiet)
    host, port = server.server_address[:2]
    if not (WEB_DIR / "vendor" / "echarts.min.js").is_file():
        print("warning: dashboard/web/vendor/echarts.min.js is missing: run `bash dashboard/scripts/build.sh`",
              file=sys.stderr)
    if not path.is_file():
        print(f"warning: warehouse {path} does not exist yet: the API answers 503 until it does", file=sys.stderr)
    print(f"clickstream dashboard: http://{host}:{port}/  (warehouse {path}, schema {args.schema})", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
