"""Late data lands, through the whole local chain, as the hourly schedule runs it.

A first round of traffic goes collector → batcher → compaction → loader → dbt. Then a shopper's
phone delivers its offline queue two days late (a session, a cart and an order, and later a
retried copy of part of it), and one "hourly run" follows, exactly as the Kestra flow runs it:
batcher → compact → load (no window) → `dbt build --selector hourly`. The late session must be
in every mart, nothing double-counted, and every mart the hourly build maintains must equal a
full rebuild from the same raw data.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from decimal import Decimal
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from test_local_pipeline import ROOT, binary, free_port, run

KEY = "late-key"
# The models the hourly selector keeps up to date (dbt/selectors.yml), compared with a full
# rebuild. Orders and sessions, traffic, events, funnel and data quality by day.
HOURLY_RELATIONS = [
    "stg_clickstream__events",
    "int_events__sessionized",
    "fct_sessions",
    "fct_orders",
    "fct_traffic_daily",
    "fct_traffic_hourly",
    "fct_events_daily",
    "fct_funnel_daily",
    "fct_data_quality_daily",
]


class Collector:
    def __init__(self, spool: Path):
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary("clickstream-collector"), "--listen", f"127.0.0.1:{self.port}", "--spool-dir", str(spool),
             "--write-key", f"{KEY}=storefront"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "the collector did not become ready"
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def send(self, batch: dict) -> dict:
        request = urllib.request.Request(
            f"{self.url}/v1/events", data=json.dumps(batch).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode(),
                     # The shop's Android app (a client library's own agent would be taken for a bot).
                     "User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                                   "Chrome/126.0.6478.71 Mobile Safari/537.36"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def hourly_run(work: Path):
    """One run of the hourly flow's steps, with its command lines."""
    run(binary("clickstream-batcher"), "run", "--spool-dir", str(work / "spool"), "--lake", str(work / "lake"))
    run(binary("clickstream-batcher"), "compact", "--lake", str(work / "lake"), "--closed-before-hours", "1")
    loaded = run(binary("clickstream-loader"), "load", "--lake", str(work / "lake"), "--duckdb-path",
                 str(work / "warehouse.duckdb"), "--duckdb-python", str(ROOT / ".venv/bin/python"))
    return loaded


def dbt(work: Path, *args: str):
    env = dict(os.environ, CLICKSTREAM_DUCKDB_PATH=str(work / "warehouse.duckdb"))
    return run(str(ROOT / ".venv/bin/dbt"), *args, "--profiles-dir", ".", "--target", "duckdb", env=env, cwd=ROOT / "dbt")


def late_journey(when: datetime) -> list[dict]:
    """A phone's offline queue: a session that ends in an order, timestamped `when` onwards."""
    anonymous = f"late-phone-{uuid.uuid4().hex[:8]}"
    at = lambda minutes: (when + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    product = {"product_id": "late-p-1", "category_code": "electronics.smartphone", "brand": "latebrand",
               "price": "499.00", "currency": "EUR"}
    context = {"platform": "android", "app": {"name": "shop", "version": "4.2"}}
    return [
        {"event_id": str(uuid.uuid4()), "event_type": "page_view", "event_time": at(0), "anonymous_id": anonymous,
         "page": {"url": "https://shop.example.com/", "path": "/"}, "context": context},
        {"event_id": str(uuid.uuid4()), "event_type": "product_view", "event_time": at(2), "anonymous_id": anonymous,
         "product": product, "context": context},
        {"event_id": str(uuid.uuid4()), "event_type": "add_to_cart", "event_time": at(4), "anonymous_id": anonymous,
         "product": {**product, "quantity": 1}, "context": context},
        {"event_id": str(uuid.uuid4()), "event_type": "begin_checkout", "event_time": at(6), "anonymous_id": anonymous,
         "context": context},
        {"event_id": str(uuid.uuid4()), "event_type": "purchase", "event_time": at(8), "anonymous_id": anonymous,
         "product": {**product, "quantity": 1},
         "order": {"order_id": f"late-order-{anonymous}", "revenue": "499.00", "currency": "EUR"}, "context": context},
    ]


def table_rows(db, relation: str) -> list:
    return sorted(db.execute(f"select * from analytics.{relation}").fetchall(), key=repr)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    work = tmp_path_factory.mktemp("late")
    collector = Collector(work / "spool")
    try:
        run(binary("clickstream-simulator"), "--collector", collector.url, "--write-key", KEY, "--events", "2500",
            "--days", "4", "--seed", "5", "--no-progress")
    finally:
        collector.stop()
    hourly_run(work)
    dbt(work, "build")
    before = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
    orders_before = before.execute("select count(*), sum(revenue) from analytics.fct_orders").fetchall()[0]
    before.close()

    # Two days later than they happened, the phone delivers its queue; the first request's
    # answer is lost, so the phone sends part of it again (same event ids), in a later request.
    when = (datetime.now(timezone.utc) - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    journey = late_journey(when)
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    collector = Collector(work / "spool")
    try:
        first = collector.send({"sent_at": now, "events": journey})
        assert first["accepted"] == len(journey), first
    finally:
        collector.stop()
    run(binary("clickstream-batcher"), "run", "--spool-dir", str(work / "spool"), "--lake", str(work / "lake"))
    collector = Collector(work / "spool")
    try:
        retried = collector.send({"sent_at": now, "events": journey[3:]})
        assert retried["accepted"] == 2, retried
    finally:
        collector.stop()
    loaded = hourly_run(work)
    hourly = dbt(work, "build", "--selector", "hourly")

    # The same raw data, rebuilt from scratch, for comparison.
    rebuilt = work / "rebuilt.duckdb"
    shutil.copy(work / "warehouse.duckdb", rebuilt)
    env = dict(os.environ, CLICKSTREAM_DUCKDB_PATH=str(rebuilt))
    run(str(ROOT / ".venv/bin/dbt"), "build", "--full-refresh", "--profiles-dir", ".", "--target", "duckdb",
        env=env, cwd=ROOT / "dbt")
    return {
        "journey": journey,
        "day": when.date(),
        "loaded": loaded,
        "hourly": hourly,
        "orders_before": orders_before,
        "db": duckdb.connect(str(work / "warehouse.duckdb"), read_only=True),
        "rebuilt": duckdb.connect(str(rebuilt), read_only=True),
    }


def test_the_loader_reloads_the_late_day_without_a_window(chain):
    assert "partitions loaded" in chain["loaded"]
    loaded = int(chain["loaded"].split("loader: ")[1].split(" partitions loaded")[0])
    assert loaded >= 1, chain["loaded"]
    day = chain["day"].isoformat()
    reloads = chain["db"].execute(
        "select count(*) from raw._partition_loads where strftime(partition_date, '%Y-%m-%d') = ?", [day]
    ).fetchall()[0][0]
    assert reloads >= 2, "the late day was loaded again after its first load"


def test_the_late_session_and_order_are_in_the_marts_once(chain):
    db, journey = chain["db"], chain["journey"]
    ids = [e["event_id"] for e in journey]
    placeholders = ", ".join("?" * len(ids))
    raw = db.execute(f"select count(*) from raw.events where event_id in ({placeholders})", ids).fetchall()[0][0]
    staged = db.execute(
        f"select count(*) from analytics.stg_clickstream__events where event_id in ({placeholders})", ids
    ).fetchall()[0][0]
    assert staged == len(journey), "every late event is staged once"
    assert raw == len(journey), "compaction of the closed day merged the retried copies"
    order_id = journey[-1]["order"]["order_id"]
    order = db.execute("select order_date, revenue from analytics.fct_orders where order_id = ?", [order_id]).fetchall()
    assert len(order) == 1 and order[0][0] == chain["day"] and Decimal(order[0][1]) == Decimal("499"), order
    orders, revenue = db.execute("select count(*), sum(revenue) from analytics.fct_orders").fetchall()[0]
    assert orders == chain["orders_before"][0] + 1
    assert Decimal(revenue) - Decimal(chain["orders_before"][1]) == Decimal("499")
    session = db.execute(
        "select events, orders, furthest_funnel_step from analytics.fct_sessions where anonymous_id = ?",
        [journey[0]["anonymous_id"]],
    ).fetchall()
    assert session == [(5, 1, "purchase")], session
    day_orders = db.execute(
        "select orders from analytics.fct_funnel_daily where funnel_date = ?", [chain["day"]]
    ).fetchall()
    rebuilt_day_orders = chain["rebuilt"].execute(
        "select orders from analytics.fct_funnel_daily where funnel_date = ?", [chain["day"]]
    ).fetchall()
    assert day_orders == rebuilt_day_orders and day_orders[0][0] >= 1


@pytest.mark.parametrize("relation", HOURLY_RELATIONS)
def test_the_hourly_build_equals_a_full_rebuild(chain, relation):
    assert table_rows(chain["db"], relation) == table_rows(chain["rebuilt"], relation)
