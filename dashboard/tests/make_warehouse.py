#!/usr/bin/env python3
"""Build a small DuckDB warehouse for the dashboard tests (and local demos).

Same approach as tests/dbt (their fixture and helpers are imported, not
copied): create raw.events with the loader's columns, insert rows, run dbt on
the repo's dbt/ project with CLICKSTREAM_DUCKDB_PATH pointing at the file.

Rows: the hand-written dbt fixture journeys (tests/dbt/fixture.py, including
the late event) plus a deterministic synthetic shop (fixed seed): two weeks
of sessions with daily/hourly patterns, channels, devices, 14 products in 7
categories and 8 brands, carts, checkouts and orders. Enough for every tile
to show something an analyst would recognise.

    .venv/bin/python dashboard/tests/make_warehouse.py PATH [--days 14] [--build]

`--build` runs `dbt build` (models + data tests) instead of `dbt run`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "dbt"))

import dbt_helpers as h  # noqa: E402  (tests/dbt)
import fixture  # noqa: E402  (tests/dbt)

SCHEMA = "analytics"
FIRST_DAY = dt.date(2024, 3, 1)

PRODUCTS = [
    # product_id, category_code, brand, price, popularity
    ("SKU-1001", "electronics.smartphone", "apple", 899, 9),
    ("SKU-1002", "electronics.smartphone", "samsung", 749, 7),
    ("SKU-1003", "electronics.audio.headphone", "sony", 249, 8),
    ("SKU-1004", "electronics.audio.headphone", "acme", 59, 6),
    ("SKU-1005", "electronics.laptop", "apple", 1499, 4),
    ("SKU-1006", "electronics.laptop", "lenovo", 999, 3),
    ("SKU-2001", "apparel.shoes", "nike", 129, 9),
    ("SKU-2002", "apparel.shoes", "adidas", 99, 7),
    ("SKU-2003", "apparel.jacket", "northwind", 179, 4),
    ("SKU-2004", "apparel.jacket", "acme", 89, 3),
    ("SKU-3001", "home.kitchen", "bosch", 349, 5),
    ("SKU-3002", "home.kitchen", "acme", 39, 6),
    ("SKU-3003", "home.furniture", "ikea", 249, 3),
    ("SKU-3004", "home.furniture", "ikea", 79, 4),
]

CHANNELS = [
    # weight, fields of the first event
    (30, dict()),  # direct
    (22, dict(page_referrer="https://www.google.com/")),
    (14, dict(utm_source="google", utm_medium="cpc", utm_campaign="spring_sale")),
    (10, dict(utm_source="newsletter", utm_medium="email", utm_campaign="weekly")),
    (9, dict(page_referrer="https://www.instagram.com/")),
    (8, dict(utm_source="meta", utm_medium="paid_social", utm_campaign="retarget")),
    (7, dict(page_referrer="https://blog.example.org/best-gadgets")),
]
DEVICES = [(55, fixture.DESKTOP), (30, fixture.IPHONE), (15, fixture.ANDROID)]
# relative traffic per UTC hour: a lunch bump and an evening peak at 20:00
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 10, 9, 7, 6, 6, 7, 9, 12, 14, 11, 6, 3]


def pick(rng: random.Random, weighted):
    return rng.choices([x for _, x in weighted], weights=[w for w, _ in weighted])[0]


def synthetic_events(days: int, seed: int = 20240301) -> list[dict]:
    rng = random.Random(seed)
    rows: list[dict] = []
    visitors = [f"v{n:04d}" for n in range(400)]
    logged_in = {v: f"user-{n:04d}" for n, v in enumerate(visitors) if n % 5 == 0}
    order_no = 0
    session_no = 0
    for day in range(days):
        date = FIRST_DAY + dt.timedelta(days=day)
        weekend = date.weekday() >= 5
        n_sessions = int((26 + day * 1.5) * (1.35 if weekend else 1.0)) + rng.randint(-4, 4)
        for _ in range(n_sessions):
            session_no += 1
            visitor = rng.choice(visitors[: 120 + day * 20])
            device = pick(rng, DEVICES)
            channel = pick(rng, CHANNELS)
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            t = dt.datetime.combine(date, dt.time(hour, rng.randint(0, 59), rng.randint(0, 59)))
            ident = dict(anonymous_id=f"anon-{visitor}", session_id=f"cs-{session_no}", **device)
            if visitor in logged_in and rng.random() < 0.6:
                ident["user_id"] = logged_in[visitor]
            seq = 0

            def emit(event_type, **fields):
                nonlocal t, seq
                seq += 1
                at = t.strftime("%Y-%m-%d %H:%M:%S")
                received = (t + dt.timedelta(seconds=rng.randint(1, 4))).strftime("%Y-%m-%d %H:%M:%S")
                rows.append(fixture.ev(f"syn-{session_no}-{seq}", event_type, at, received=received,
                                       **ident, **fields))
                t += dt.timedelta(seconds=rng.randint(15, 150))

            landing = rng.choice(["/home", "/home", "/home", "/c/electronics", "/c/apparel", "/sale"])
            emit("page_view", page_path=landing, page_url="https://shop.example.com" + landing, **channel)
            if rng.random() < 0.22:  # bounce
                continue
            if rng.random() < 0.3:
                emit("search", page_path="/search", search_query=rng.choice(["headphones", "shoes", "iphone", "sofa"]))
            cart = []
            n_views = rng.choices([1, 2, 3, 4, 5], weights=[30, 28, 20, 12, 10])[0]
            for product in rng.choices(PRODUCTS, weights=[p[4] for p in PRODUCTS], k=n_views):
                pid, cat, brand, price, _ = product
                attrs = dict(product_id=pid, category_id="c-" + cat.split(".")[0], category_code=cat,
                             brand=brand, price=str(price), currency="EUR")
                emit("product_view", page_path=f"/p/{pid.lower()}", **attrs)
                cart_p = 0.34 if price < 200 else 0.2
                if rng.random() < cart_p:
                    qty = 2 if price < 100 and rng.random() < 0.25 else 1
                    emit("add_to_cart", page_path=f"/p/{pid.lower()}", quantity=qty, **attrs)
                    cart.append((attrs, qty))
            if cart and rng.random() < 0.12:
                attrs, qty = cart.pop()
                emit("remove_from_cart", page_path="/cart", quantity=qty, **attrs)
            if not cart:
                if rng.random() < 0.4:
                    emit("page_view", page_path="/home")
                continue
            emit("page_view", page_path="/cart")
            if rng.random() > 0.62:
                continue
            emit("begin_checkout", page_path="/checkout")
            if rng.random() > 0.68:
                continue
            order_no += 1
            for attrs, qty in cart:
                revenue = int(attrs["price"]) * qty
                emit("purchase", page_path="/checkout/complete", quantity=qty, order_id=f"ORD-{order_no:05d}",
                     revenue=str(revenue), order_currency="EUR", **attrs)
                t -= dt.timedelta(seconds=10)  # the lines of one order arrive together
    return rows


def load_rows(db_path: Path, rows: list[dict]) -> None:
    """raw.events as tests/dbt creates it (dbt_helpers.duckdb_create_sql), filled in one
    statement from a JSON-lines file (row-by-row executemany takes ~20 s for 2,400 rows)."""
    import json

    import duckdb

    columns = "{" + ", ".join(f"'{name}': '{ddb}'" for name, _bq, ddb, _req in fixture.COLUMNS) + "}"
    with tempfile.TemporaryDirectory(prefix="dashboard-rows-") as tmp:
        jsonl = Path(tmp) / "events.jsonl"
        jsonl.write_text("".join(json.dumps({c: row[c] for c in fixture.COLUMN_NAMES}) + "\n" for row in rows))
        con = duckdb.connect(str(db_path))
        try:
            con.execute(h.duckdb_create_sql())
            con.execute(f"insert into raw.events by name select * from read_json(?, format = 'newline_delimited', "
                        f"columns = {columns})", [str(jsonl)])
            assert con.execute("select count(*) from raw.events").fetchall()[0][0] == len(rows)
        finally:
            con.close()


def build(db_path: Path, days: int = 14, full_build: bool = False, workdir: Path | None = None) -> Path:
    """Create db_path (must not exist) with raw.events and the dbt models. Returns db_path."""
    db_path = Path(db_path).resolve()
    if db_path.exists():
        raise SystemExit(f"{db_path} exists; remove it first")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    rows = fixture.EVENTS + fixture.LATE_EVENTS + synthetic_events(days)
    load_rows(db_path, rows)
    env = {"CLICKSTREAM_DUCKDB_PATH": str(db_path), "CLICKSTREAM_DBT_SCHEMA": SCHEMA,
           "CLICKSTREAM_DBT_TARGET": "duckdb"}
    with tempfile.TemporaryDirectory(prefix="dashboard-dbt-") as tmp:
        args = ("build", "--exclude-resource-type", "unit_test") if full_build else ("run",)
        h.run_dbt(Path(workdir or tmp), h.DBT_DIR, *args, target="duckdb", extra_env=env,
                  dbt_vars={"run_date": (FIRST_DAY + dt.timedelta(days=days)).isoformat()})
    return db_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--build", action="store_true", help="dbt build (models + data tests) instead of dbt run")
    args = parser.parse_args()
    started = time.monotonic()
    path = build(args.path, args.days, args.build)
    print(f"warehouse ready: {path} ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
