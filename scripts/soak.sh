#!/usr/bin/env bash
# Soak test: collector → spool → batcher at a steady rate for a long time (30 min by default),
# with the batcher run on a schedule beside the collector, as the local schedule runs it.
# Samples the collector's RSS and open files every SOAK_SAMPLE_SECONDS, and the batcher's peak
# RSS and open files per run; reports p50/p99 latency, events accepted vs landed in the lake
# (Parquet rows, counted with DuckDB), RSS and fd first/last/max, and a flatness verdict from
# the slope over the last 10 minutes. Prints a table and writes bench/SOAK.md.
# Not part of `make test`: run it with `make soak`.
#
# Settings (environment): SOAK_SECONDS (1800), SOAK_RATE (events/s, 2000), SOAK_BATCH (events
# per request, 100), SOAK_BATCHER_EVERY (seconds between batcher runs, 60),
# SOAK_SAMPLE_SECONDS (10), SOAK_WORKERS (client connections, 8).
#
# Load comes from an open-loop generator in Python (stdlib HTTP, keep-alive connections): each
# request has a scheduled send time at the steady rate, and latency is measured from that time,
# so a stalled collector shows as latency rather than as a silently lower rate. Every event has
# its own event_id, so accepted and landed counts can be compared one to one. (wrk holds no
# fixed rate and repeats one body.)
set -euo pipefail
cd "$(dirname "$0")/.."

export SOAK_SECONDS=${SOAK_SECONDS:-1800}
export SOAK_RATE=${SOAK_RATE:-2000}
export SOAK_BATCH=${SOAK_BATCH:-100}
export SOAK_BATCHER_EVERY=${SOAK_BATCHER_EVERY:-60}
export SOAK_SAMPLE_SECONDS=${SOAK_SAMPLE_SECONDS:-10}
export SOAK_WORKERS=${SOAK_WORKERS:-8}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WORK=bench/work/soak

bash scripts/python-env.sh >/dev/null
echo "soak: building release binaries"
# The same packages as scripts/run-local.sh and bench-e2e.sh: one feature set, one build.
cargo build --release -q -p collector -p batcher -p loader -p simulator
export SOAK_COLLECTOR="$TARGET_DIR/release/clickstream-collector"
export SOAK_BATCHER="$TARGET_DIR/release/clickstream-batcher"
export SOAK_WORK=$WORK
rm -rf "$WORK" && mkdir -p "$WORK"

exec .venv/bin/python scripts/soak.py
