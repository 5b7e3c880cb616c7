"""The whole local chain, end to end, against the simulator's ground truth.

collector (spool) ← simulator over HTTP → batcher → lake → loader → DuckDB → dbt → marts.
The simulator writes what it sent (--truth); every mart number asserted here comes from that
file, not from the models. Binaries come from cargo's target directory (`make test-e2e` builds
them first).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
EVENTS = 6000
SEED = 11


def binary(name: str) -> str:
    path = TARGET / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `cargo build --workspace --bins` (make test-e2e does)")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    spool, lake, warehouse, truth = work / "spool", work / "lake", work / "warehouse.duckdb", work / "truth.json"
    port = free_port()
    collector = subprocess.Popen(
        [binary("clickstream-collector"), "--listen", f"127.0.0.1:{port}", "--spool-dir", str(spool),
         "--write-key", "e2e-key=storefront"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the collector did not become ready"
            time.sleep(0.1)
        summary = run(binary("clickstream-simulator"), "--collector", f"http://127.0.0.1:{port}", "--write-key", "e2e-key",
                      "--events", str(EVENTS), "--seed", str(SEED), "--truth", str(truth), "--no-progress")
    finally:
        collector.send_signal(signal.SIGTERM)  # graceful: drains requests, seals the open segment
        collector.wait(timeout=30)
    batcher = run(binary("clickstream-batcher"), "run", "--spool-dir", str(spool), "--lake", str(lake))
    loader = run(binary("clickstream-loader"), "load", "--lake", str(lake), "--duckdb-path", str(warehouse),
                 "--duckdb-python", str(ROOT / ".venv/bin/python"))
    env = dict(os.environ, CLICKSTREAM_DUCKDB_PATH=str(warehouse))
    run(str(ROOT / ".venv/bin/dbt"), "build", "--profiles-dir", ".", "--target", "duckdb", env=env, cwd=ROOT / "dbt")
    return {
        "truth": json.loads(truth.read_text()),
        "db": duckdb.connect(str(warehouse), read_only=True),
        "lake": lake,
        "summaries": (summary, batcher, loader),
    }


def one(db, sql):
    return db.execute(sql).fetchall()[0]


def test_every_event_sent_reaches_the_raw_table_once(pipeline):
    truth, db = pipeline["truth"], pipeline["db"]
    sent = truth["events"] + truth["bot_events"]
    rows, distinct, bots = one(db, "select count(*), count(distinct event_id), count(*) filter (where is_bot) from raw.events")
    # Resent batches are deduplicated per lake file; any duplicate left is removed by staging.
    assert distinct == sent
    assert rows >= distinct
    assert bots == truth["bot_events"]


def test_event_counts_by_type_match_what_was_sent(pipeline):
    truth, db = pipeline["truth"], pipeline["db"]
    by_type = dict(db.execute("select event_type, sum(events) from analytics.fct_events_daily group by 1").fetchall())
    assert {k: int(v) for k, v in by_type.items()} == truth["events_by_type"]


def test_orders_and_revenue_match(pipeline):
    truth, db = pipeline["truth"], pipeline["db"]
    orders, revenue = one(db, "select count(*), sum(revenue) from analytics.fct_orders")
    assert orders == truth["orders"]
    assert Decimal(revenue) == Decimal(truth["revenue"])
    funnel_orders, funnel_revenue = one(db, "select sum(orders), sum(revenue) from analytics.fct_funnel_daily")
    assert funnel_orders == truth["orders"]
    assert Decimal(funnel_revenue) == Decimal(truth["revenue"])


def test_funnel_and_product_marts_count_the_sent_funnel_events(pipeline):
    truth, db = pipeline["truth"], pipeline["db"]
    expected = truth["events_by_type"]
    views, carts, checkouts, purchases = one(db, "select sum(product_view_events), sum(add_to_cart_events), "
                                                 "sum(begin_checkout_events), sum(purchase_events) from analytics.fct_funnel_daily")
    assert (views, carts, checkouts, purchases) == (expected["product_view"], expected["add_to_cart"],
                                                    expected["begin_checkout"], expected["purchase"])
    product_views, removals = one(db, "select sum(product_views), sum(cart_removals) from analytics.fct_product_performance")
    assert product_views == expected["product_view"]
    assert removals == expected["remove_from_cart"]


def test_traffic_marks_one_peak_hour_per_day_and_counts_every_event(pipeline):
    truth, db = pipeline["truth"], pipeline["db"]
    events, days, peaks = one(db, "select sum(events), count(distinct event_date), count(*) filter (where is_peak_hour) "
                                  "from analytics.fct_traffic_hourly")
    assert events == truth["events"]
    assert peaks >= days


def test_rejected_and_late_events_are_accounted_for(pipeline):
    truth, lake = pipeline["truth"], pipeline["lake"]
    dead = [line for path in lake.glob("dead-letter/*/*.jsonl") for line in path.read_text().splitlines()]
    assert len(dead) == truth["invalid_events"] == truth["rejected_by_collector"]
    assert truth["late_events"] > 0 and truth["resent_events"] > 0, "the run exercised late and duplicate delivery"
