"""API tests of dashboard/server.py against a dbt-built DuckDB warehouse.

The warehouse is built once per run with tests/make_warehouse.py (the dbt
fixture journeys + a deterministic synthetic shop, `dbt run` into a temp
dir), or taken from DASHBOARD_TEST_DUCKDB_PATH when set (scripts/test.sh
builds one warehouse for both test suites). Every expected number is read
from the marts with direct SQL here, never hard-coded.

    .venv/bin/python -m pytest dashboard/tests/test_api.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE.parent
sys.path.insert(0, str(DASHBOARD))
sys.path.insert(0, str(HERE))

import server as dashboard_server  # noqa: E402

S = "analytics"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Path:
    given = os.environ.get("DASHBOARD_TEST_DUCKDB_PATH")
    if given:
        assert Path(given).is_file(), f"DASHBOARD_TEST_DUCKDB_PATH={given} does not exist"
        return Path(given)
    import make_warehouse

    return make_warehouse.build(tmp_path_factory.mktemp("dashboard") / "warehouse.duckdb")


@pytest.fixture(scope="session")
def sql(warehouse):
    def run(query: str, params=()):
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            return con.execute(query, list(params)).fetchall()
        finally:
            con.close()

    return run


def serve(path: Path):
    srv = dashboard_server.make_server(path, "127.0.0.1:0", quiet=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


@pytest.fixture(scope="session")
def base_url(warehouse):
    srv, url = serve(warehouse)
    yield url
    srv.shutdown()
    srv.server_close()


def get(url: str) -> tuple[int, dict | bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as res:
            status, body, ctype = res.status, res.read(), res.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, body, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
    if ctype.startswith("application/json"):
        return status, json.loads(body), ctype
    return status, body, ctype


@pytest.fixture(scope="session")
def api(base_url):
    def call(path: str, **params) -> dict:
        query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
        status, body, _ = get(f"{base_url}{path}{'?' + query if query else ''}")
        assert status == 200, body
        return body

    return call


@pytest.fixture(scope="session")
def data_range(sql):
    lo, hi = sql(f"select min(event_date), max(event_date) from {S}.fct_traffic_daily")[0]
    return lo.isoformat(), hi.isoformat()


def ranges(data_range):
    lo, hi = data_range
    import datetime as dt

    hi_d = dt.date.fromisoformat(hi)
    return {
        "all": (lo, hi),
        "last2": ((hi_d - dt.timedelta(days=1)).isoformat(), hi),
        "one_day": ("2024-03-10", "2024-03-10"),
        "empty": ("2023-01-01", "2023-01-31"),
    }


RANGE_NAMES = ["all", "last2", "one_day", "empty"]


@pytest.fixture(params=RANGE_NAMES)
def rng(request, data_range):
    return ranges(data_range)[request.param]


# --------------------------------------------------------------------------- endpoints


def test_date_range_is_the_marts_span(api, sql, data_range):
    body = api("/api/date-range")
    assert (body["min"], body["max"]) == data_range
    assert body["days"] == sql(f"select max(event_date) - min(event_date) + 1 from {S}.fct_traffic_daily")[0][0]


def test_summary_matches_the_marts(api, sql, rng):
    lo, hi = rng
    k = api("/api/summary", **{"from": lo, "to": hi})["kpis"]
    events, sessions, page_views = sql(
        f"select coalesce(sum(events),0), coalesce(sum(sessions),0), coalesce(sum(page_views),0) "
        f"from {S}.fct_traffic_daily where event_date between ? and ?", [lo, hi])[0]
    orders, revenue = sql(f"select count(*), coalesce(sum(revenue),0) from {S}.fct_orders "
                          f"where order_date between ? and ?", [lo, hi])[0]
    visitors = sql(f"select count(distinct visitor_id) from {S}.fct_sessions "
                   f"where not is_quarantined and session_date between ? and ?", [lo, hi])[0][0]
    f_sessions, f_purchase = sql(f"select sum(sessions), sum(sessions_reached_purchase) from {S}.fct_funnel_daily "
                                 f"where funnel_date between ? and ?", [lo, hi])[0]
    assert (k["events"], k["sessions"], k["page_views"], k["orders"], k["visitors"]) == \
        (events, sessions, page_views, orders, visitors)
    assert k["revenue"] == pytest.approx(float(revenue))
    if f_sessions:
        assert k["conversion_rate"] == pytest.approx(f_purchase / f_sessions)
        assert k["average_order_value"] == pytest.approx(float(revenue) / orders)
    else:
        assert k["conversion_rate"] is None and k["events"] == 0


def test_summary_changes_with_the_range_and_has_a_previous_period(api, data_range):
    r = ranges(data_range)
    full = api("/api/summary", **{"from": r["all"][0], "to": r["all"][1]})
    narrow = api("/api/summary", **{"from": r["last2"][0], "to": r["last2"][1]})
    assert 0 < narrow["kpis"]["events"] < full["kpis"]["events"]
    assert narrow["previous"]["to"] < narrow["from"]
    prev = api("/api/summary", **{"from": narrow["previous"]["from"], "to": narrow["previous"]["to"]})
    assert prev["kpis"] == narrow["previous"]["kpis"]
    # no parameters: the whole span of the data
    assert api("/api/summary")["kpis"] == full["kpis"]


def test_traffic_matches_the_marts(api, sql, rng):
    lo, hi = rng
    body = api("/api/traffic", **{"from": lo, "to": hi})
    daily = sql(f"select event_date, events, sessions, peak_hour_of_day from {S}.fct_traffic_daily "
                f"where event_date between ? and ? order by 1", [lo, hi])
    assert [(d["event_date"], d["events"], d["sessions"], d["peak_hour_of_day"]) for d in body["daily"]] == \
        [(d.isoformat(), e, s, p) for d, e, s, p in daily]
    hourly = dict(sql(f"select hour_of_day, sum(events) from {S}.fct_traffic_hourly "
                      f"where event_date between ? and ? group by 1", [lo, hi]))
    assert [h["events"] for h in body["hourly"]] == [hourly.get(h, 0) for h in range(24)]
    if hourly:
        top = max(hourly.values())
        assert body["peak_hour_of_day"] == min(h for h, e in hourly.items() if e == top)
        assert body["peak_hour"]["events"] == sql(
            f"select max(events) from {S}.fct_traffic_hourly where event_date between ? and ?", [lo, hi])[0][0]
    else:
        assert body["peak_hour_of_day"] is None and body["peak_hour"] is None
    types = dict(sql(f"select event_type, sum(events) from {S}.fct_events_daily "
                     f"where event_date between ? and ? group by 1", [lo, hi]))
    assert {t["event_type"]: t["events"] for t in body["event_types"]} == types


def test_funnel_matches_the_marts(api, sql, rng):
    lo, hi = rng
    steps = api("/api/funnel", **{"from": lo, "to": hi})["steps"]
    expected = sql(f"""select coalesce(sum(sessions),0), coalesce(sum(sessions_reached_product_view),0),
                              coalesce(sum(sessions_reached_add_to_cart),0),
                              coalesce(sum(sessions_reached_begin_checkout),0),
                              coalesce(sum(sessions_reached_purchase),0)
                       from {S}.fct_funnel_daily where funnel_date between ? and ?""", [lo, hi])[0]
    assert [s["sessions"] for s in steps] == list(expected)
    assert [s["step"] for s in steps] == ["sessions", "product_view", "add_to_cart", "begin_checkout", "purchase"]
    for prev, cur in zip(steps, steps[1:]):
        assert cur["sessions"] <= prev["sessions"]
        if prev["sessions"]:
            assert cur["step_conversion"] == pytest.approx(cur["sessions"] / prev["sessions"])
            assert cur["drop_off"] == pytest.approx(1 - cur["sessions"] / prev["sessions"])


PRODUCT_COLUMNS = ["product_views", "add_to_carts", "purchases", "units_sold", "revenue", "view_sessions",
                   "cart_sessions", "purchase_sessions"]


def _by(rows, key):
    return {r[key]: tuple(pytest.approx(float(r[c])) for c in PRODUCT_COLUMNS) for r in rows}


def test_products_full_range_reads_the_mart(api, sql, data_range):
    body = api("/api/products", **{"from": data_range[0], "to": data_range[1]})
    assert body["source"] == "mart"
    cols = ", ".join(PRODUCT_COLUMNS)
    mart = sql(f"select product_id, {cols} from {S}.fct_product_performance")
    assert _by(body["rows"], "product_id") == {r[0]: tuple(pytest.approx(float(v)) for v in r[1:]) for r in mart}
    assert [r["revenue"] for r in body["rows"]] == sorted((r["revenue"] for r in body["rows"]), reverse=True)


def test_products_for_a_date_range(api, sql, rng):
    lo, hi = rng
    body = api("/api/products", **{"from": lo, "to": hi})
    # every product-carrying funnel event and all revenue of the range, per the daily funnel mart
    views, revenue = sql(f"select coalesce(sum(product_view_events),0), coalesce(sum(revenue),0) "
                         f"from {S}.fct_funnel_daily where funnel_date between ? and ?", [lo, hi])[0]
    assert sum(r["product_views"] for r in body["rows"]) == views
    assert sum(r["revenue"] for r in body["rows"]) == pytest.approx(float(revenue))
    # per product: the product_view events of the range in the sessionized events
    per_product = dict(sql(f"select product_id, count(*) from {S}.int_events__sessionized where "
                           f"event_type = 'product_view' and event_date between ? and ? group by 1", [lo, hi]))
    assert {r["product_id"]: r["product_views"] for r in body["rows"] if r["product_views"]} == per_product
    for r in body["rows"]:
        if r["view_sessions"]:
            assert r["conversion_rate"] == pytest.approx(r["purchase_sessions"] / r["view_sessions"])


def test_derived_product_figures_add_up_to_the_mart(api, sql, data_range):
    # one call per day: the additive columns sum to the all-time mart
    import datetime as dt

    lo, hi = (dt.date.fromisoformat(d) for d in data_range)
    totals: dict[str, list[float]] = {}
    day = lo
    while day <= hi:
        for r in api("/api/products", **{"from": day.isoformat(), "to": day.isoformat()})["rows"]:
            t = totals.setdefault(r["product_id"], [0.0, 0.0, 0.0])
            t[0] += r["product_views"]
            t[1] += r["add_to_carts"]
            t[2] += r["revenue"]
        day += dt.timedelta(days=1)
    mart = {p: [float(a), float(b), float(c)] for p, a, b, c in
            sql(f"select product_id, product_views, add_to_carts, revenue from {S}.fct_product_performance")}
    assert set(totals) == set(mart)
    for product, values in mart.items():
        assert totals[product] == pytest.approx(values), product


@pytest.mark.parametrize("level", ["top", "leaf"])
def test_categories(api, sql, data_range, level):
    full = api("/api/categories", level=level, **{"from": data_range[0], "to": data_range[1]})
    assert full["source"] == "mart"
    cols = ", ".join(PRODUCT_COLUMNS)
    mart = sql(f"select category, {cols} from {S}.fct_funnel_categories where category_level = ?", [level])
    assert _by(full["rows"], "category") == {r[0]: tuple(pytest.approx(float(v)) for v in r[1:]) for r in mart}
    lo, hi = ranges(data_range)["last2"]
    narrow = api("/api/categories", level=level, **{"from": lo, "to": hi})
    assert narrow["source"] == "derived"
    products = api("/api/products", **{"from": lo, "to": hi})["rows"]
    assert sum(r["product_views"] for r in narrow["rows"]) == \
        sum(p["product_views"] for p in products if p["category_code"])
    assert sum(r["product_views"] for r in narrow["rows"]) < sum(r["product_views"] for r in full["rows"])


def test_brands(api, sql, data_range):
    full = api("/api/brands", **{"from": data_range[0], "to": data_range[1]})
    assert full["source"] == "mart"
    cols = ", ".join(PRODUCT_COLUMNS)
    mart = sql(f"select brand, {cols} from {S}.fct_funnel_brands")
    assert _by(full["rows"], "brand") == {r[0]: tuple(pytest.approx(float(v)) for v in r[1:]) for r in mart}
    lo, hi = ranges(data_range)["last2"]
    narrow = api("/api/brands", **{"from": lo, "to": hi})
    assert narrow["source"] == "derived"
    revenue = sql(f"select coalesce(sum(revenue),0) from {S}.int_events__sessionized where event_type = 'purchase' "
                  f"and brand is not null and event_date between ? and ?", [lo, hi])[0][0]
    assert sum(r["revenue"] for r in narrow["rows"]) == pytest.approx(float(revenue))


def test_dropoff(api, sql, rng, data_range):
    lo, hi = rng
    body = api("/api/dropoff", **{"from": lo, "to": hi})
    assert body["source"] == ("mart" if (lo, hi) == data_range else "derived")
    rows = body["rows"]
    assert [r["funnel_step"] for r in rows] == ["none", "product_view", "add_to_cart", "begin_checkout", "purchase"]
    funnel = sql(f"""select coalesce(sum(sessions),0), coalesce(sum(sessions_reached_product_view),0),
                            coalesce(sum(sessions_reached_add_to_cart),0),
                            coalesce(sum(sessions_reached_begin_checkout),0),
                            coalesce(sum(sessions_reached_purchase),0)
                     from {S}.fct_funnel_daily where funnel_date between ? and ?""", [lo, hi])[0]
    assert [r["sessions_reached_step"] for r in rows] == list(funnel)
    if (lo, hi) == data_range:
        mart = sql(f"select funnel_step, sessions_ended_at_step, drop_off_rate from {S}.fct_session_dropoff "
                   f"order by funnel_step_rank")
        assert [(r["funnel_step"], r["sessions_ended_at_step"]) for r in rows] == [(m[0], m[1]) for m in mart]
    for r in rows[:-1]:
        if r["sessions_reached_step"]:
            assert r["drop_off_rate"] == pytest.approx(r["sessions_ended_at_step"] / r["sessions_reached_step"])
    assert rows[-1]["drop_off_rate"] is None


def test_sessions(api, sql, rng):
    lo, hi = rng
    body = api("/api/sessions", **{"from": lo, "to": hi})
    sessions, revenue = sql(f"select count(*), coalesce(sum(revenue),0) from {S}.fct_sessions "
                            f"where not is_quarantined and session_date between ? and ?", [lo, hi])[0]
    assert body["totals"]["sessions"] == sessions
    assert sum(b["sessions"] for b in body["duration"]) == sessions
    assert sum(b["sessions"] for b in body["depth"]) == sessions
    assert sum(c["sessions"] for c in body["channels"]) == sessions
    assert sum(c["revenue"] for c in body["channels"]) == pytest.approx(float(revenue))
    assert len(body["duration"]) == 5 and len(body["depth"]) == 5


# --------------------------------------------------------------------------- errors, static, health


def test_bad_requests(base_url):
    assert get(f"{base_url}/api/summary?from=yesterday")[0] == 400
    status, body, _ = get(f"{base_url}/api/traffic?from=2024-03-10&to=2024-03-01")
    assert status == 400 and "after" in body["error"]
    assert get(f"{base_url}/api/categories?level=brand")[0] == 400
    status, body, _ = get(f"{base_url}/api/nope")
    assert status == 404 and "/api/summary" in body["endpoints"]


def test_static_page_and_health(base_url, warehouse):
    status, body, ctype = get(f"{base_url}/")
    assert status == 200 and ctype.startswith("text/html")
    for tile in ("traffic", "conversion", "sessions", "top", "funnel"):
        assert f'data-tile="{tile}"'.encode() in body
    assert b'src="vendor/echarts.min.js"' in body
    import re

    assert not re.findall(rb'(?:src|href)="(?:https?:)?//', body), "no external scripts or styles (offline)"
    assert get(f"{base_url}/app.js")[0] == 200
    assert get(f"{base_url}/../server.py")[0] == 404
    assert get(f"{base_url}/%2e%2e/server.py")[0] == 404
    status, body, _ = get(f"{base_url}/healthz")
    assert status == 200 and body["warehouse"]["ok"] is True and body["warehouse"]["path"] == str(warehouse)


def test_missing_warehouse_is_a_clear_503(tmp_path):
    """The real CLI: a warehouse path that does not exist."""
    missing = tmp_path / "nope" / "warehouse.duckdb"
    proc = subprocess.Popen([sys.executable, str(DASHBOARD / "server.py"), "--duckdb", str(missing),
                             "--listen", "127.0.0.1:0", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()  # the URL line; bounded by the server printing it at start
        assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split()[2].rstrip("/")
        for path in ("/api/summary", "/api/date-range", "/api/products?from=2024-03-01&to=2024-03-02"):
            status, body, ctype = get(url + path)
            assert status == 503 and ctype.startswith("application/json")
            assert str(missing) in body["error"] and body["path"] == str(missing)
        status, body, _ = get(url + "/healthz")
        assert status == 200 and body["warehouse"]["ok"] is False and body["warehouse"]["exists"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_missing_mart_is_a_clear_503(tmp_path):
    path = tmp_path / "partial.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"create schema {S}; create table {S}.fct_traffic_daily (event_date date, events bigint)")
    con.close()
    srv, url = serve(path)
    try:
        status, body, _ = get(url + "/api/products")
        assert status == 503
        assert f"{S}.fct_product_performance" in body["error"] and str(path) in body["error"]
        assert f"{S}.fct_product_performance" in body["missing"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_locked_warehouse_is_a_503_not_a_hang(tmp_path, monkeypatch):
    """Another process writing (dbt) holds the lock: bounded retries, then 503."""
    path = tmp_path / "locked.duckdb"
    duckdb.connect(str(path)).close()
    monkeypatch.setattr(dashboard_server, "CONNECT_BACKOFF_SECONDS", 0.01)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('locked', flush=True); "
                               "time.sleep(30)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        srv, url = serve(path)
        try:
            status, body, _ = get(url + "/api/summary")
            assert status == 503 and str(path) in body["error"]
        finally:
            srv.shutdown()
            srv.server_close()
    finally:
        holder.kill()
        holder.wait(timeout=10)
