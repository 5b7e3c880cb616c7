"""Crash accounting at a small scale, for both paths (`make crash` runs it at full scale).

Two clients post about 5,000 events with their own ids, retrying until acknowledged, while the
collector and the batcher are SIGKILLed four times between them; the loader is killed mid-load
and rerun, then dbt builds the marts. Every acknowledged event must be in the marts exactly once,
and every restart must have come up (see crash_harness.py for what each figure means).

The Pub/Sub path needs Google's Pub/Sub emulator, fake-gcs-server and bqemulator; without them it
skips, naming what is missing, or fails under CLICKSTREAM_REQUIRE_EMULATORS=1 as in CI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash_harness import Emulators, Missing, Settings, run  # noqa: E402

SMALL = dict(seed=20261204, clients=2, seconds=8.0, kills=4, loader_kills=1, events=5000, profile="debug",
             drain_timeout=240.0, pubsub_flush_events=200)


def check(report):
    table = report.table()
    print(f"\ncrash accounting, {report.path} path:\n{table}")
    assert report.failures == [], table
    assert report.acknowledged > 0, table
    assert report.kills.get("collector", 0) + report.kills.get("batcher", 0) == SMALL["kills"], table
    assert report.loader_kills_mid_load >= 1, table
    assert report.lost == 0, table
    assert report.duplicates_in_marts == 0, table
    assert report.restarts_refused == 0, table
    assert report.unexpected_exits == 0, table
    assert report.landed_never_sent == 0, table
    # acknowledged ⊆ landed; what was sent and never acknowledged may or may not have landed.
    assert report.acknowledged <= report.landed <= report.sent, table
    assert report.landed == report.acknowledged + report.landed_unacknowledged, table
    assert report.raw_rows == report.landed + report.duplicates_removed, table
    assert report.ok(), table


def test_spool_path_loses_and_duplicates_nothing_under_sigkills(tmp_path):
    check(run(Settings(path="spool", workdir=tmp_path, **SMALL)))


def test_pubsub_path_loses_and_duplicates_nothing_under_sigkills(tmp_path):
    try:
        Emulators.check_installed()
    except Missing as missing:
        if os.environ.get("CLICKSTREAM_REQUIRE_EMULATORS"):
            pytest.fail(f"CLICKSTREAM_REQUIRE_EMULATORS is set: {missing}")
        pytest.skip(str(missing))
    # dbt on the BigQuery emulator takes minutes for the whole project; the accounting reads
    # only what these select (`make crash` builds everything).
    check(run(Settings(path="pubsub", workdir=tmp_path, dbt_select="+fct_events_daily +fct_orders", **SMALL)))
