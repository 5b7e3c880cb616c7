#!/usr/bin/env bash
# `make run`: the whole pipeline on this machine, on realistic generated traffic, then the
# dashboard. No cloud account: the collector queues to a local spool, the batcher writes the
# lake to a local directory, the loader fills an embedded DuckDB warehouse, dbt builds the marts,
# and a local page shows them.
#
#   collector ← simulator (HTTP) → spool → batcher → lake → loader → DuckDB → dbt → dashboard
#
# Each run starts from a fresh .clickstream/ (the previous one is removed), so re-running is
# safe. Ctrl-C stops every process this script started.
#
# Settings (environment): CLICKSTREAM_EVENTS (default 200000), CLICKSTREAM_DAYS (5),
# CLICKSTREAM_SEED (42), CLICKSTREAM_LISTEN (collector, 127.0.0.1:8080),
# CLICKSTREAM_DASHBOARD_LISTEN (127.0.0.1:8050).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

EVENTS=${CLICKSTREAM_EVENTS:-200000}
DAYS=${CLICKSTREAM_DAYS:-5}
SEED=${CLICKSTREAM_SEED:-42}
LISTEN=${CLICKSTREAM_LISTEN:-127.0.0.1:8080}
DASHBOARD=${CLICKSTREAM_DASHBOARD_LISTEN:-127.0.0.1:8050}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release"
STATE=.clickstream
export CLICKSTREAM_DUCKDB_PATH="$PWD/$STATE/warehouse.duckdb"

children=()
cleanup() {
  for pid in "${children[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo; echo "run: stopped"; exit 130' INT TERM

# Each step says when it starts (time since the run began) and how long the one before took.
step_started=
clock() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
step() {
  [ -n "$step_started" ] && printf 'run:   took %s\n' "$(clock $((SECONDS - step_started)))"
  step_started=$SECONDS
  [ -n "${1:-}" ] && printf '\nrun: %s (at %s)\n' "$1" "$(clock $((SECONDS - started)))"
  return 0
}

step "building the binaries (release, embedded path only; a first build takes about 5 minutes)"
# --no-default-features: the embedded path only. The Google Cloud back-ends (Pub/Sub, GCS,
# BigQuery: each crate's `gcp` feature) are most of the dependency tree and none of `make run`;
# `make test` and the images build them. cargo draws its own progress bar on a terminal.
cargo build --release --no-default-features -p collector -p batcher -p loader -p simulator

step "setting up the Python environment (dbt, DuckDB)"
bash scripts/python-env.sh
if [ -d dashboard ]; then
  step "building the dashboard"
  bash dashboard/scripts/build.sh >/dev/null
fi

rm -rf "$STATE"
mkdir -p "$STATE"

step "starting the collector on http://$LISTEN (spool in $STATE/spool)"
"$BIN/clickstream-collector" --listen "$LISTEN" --spool-dir "$STATE/spool" --cors-origin '*' \
  >"$STATE/collector.log" 2>&1 &
collector=$!
children+=("$collector")
for _ in $(seq 1 100); do
  curl -sf "http://$LISTEN/readyz" >/dev/null 2>&1 && break
  kill -0 "$collector" 2>/dev/null || { echo "run: the collector exited; see $STATE/collector.log" >&2; tail -5 "$STATE/collector.log" >&2; exit 1; }
  sleep 0.1
done

step "simulating $EVENTS events of shoppers over $DAYS days (seed $SEED)"
"$BIN/clickstream-simulator" --collector "http://$LISTEN" --events "$EVENTS" --days "$DAYS" --seed "$SEED" \
  --truth "$STATE/truth.json"

step "stopping the collector (it drains requests and seals the spool)"
kill -TERM "$collector"
wait "$collector" || true

step "batching the spool into the hourly Parquet lake ($STATE/lake)"
"$BIN/clickstream-batcher" run --spool-dir "$STATE/spool" --lake "$STATE/lake"
"$BIN/clickstream-batcher" compact --lake "$STATE/lake" --closed-before-hours 1

step "loading the lake into DuckDB ($STATE/warehouse.duckdb)"
"$BIN/clickstream-loader" load --lake "$STATE/lake" --duckdb-path "$CLICKSTREAM_DUCKDB_PATH" 2>"$STATE/loader.log"

step "building the dbt models (staging → sessions → marts)"
(cd dbt && ../.venv/bin/dbt build --profiles-dir . --target duckdb --quiet) || {
  echo "run: dbt build failed; rerun it for details: (cd dbt && ../.venv/bin/dbt build --profiles-dir . --target duckdb)" >&2
  exit 1
}

step "summary"
step_started=
.venv/bin/python - "$CLICKSTREAM_DUCKDB_PATH" <<'PY'
import sys
import duckdb

db = duckdb.connect(sys.argv[1], read_only=True)
one = lambda sql: db.execute(sql).fetchall()[0]
events, days = one("select sum(events), count(distinct event_date) from analytics.fct_traffic_daily")
sessions, buyers, revenue = one("select count(*), count(*) filter (where has_purchase), coalesce(sum(revenue), 0) from analytics.fct_sessions")
orders = one("select count(*) from analytics.fct_orders")[0]
peak = one("select strftime(event_hour, '%Y-%m-%d %H:00'), events from analytics.fct_traffic_hourly order by events desc limit 1")
print(f"  events         {events:>12,}   over {days} days (bots excluded)")
print(f"  sessions       {sessions:>12,}   {buyers / max(sessions, 1):.1%} converted")
print(f"  orders         {orders:>12,}   revenue EUR {revenue:,.2f}")
print(f"  peak hour      {peak[0]} with {peak[1]:,} events")
print("  top products by revenue:")
for product_id, brand, category, product_revenue, views in db.execute(
    "select product_id, brand, category_code, revenue, product_views from analytics.fct_product_performance "
    "order by revenue desc nulls last limit 5"
).fetchall():
    print(f"    {product_id:>10}  {brand or '-':<12} {category or '-':<30} EUR {product_revenue or 0:>11,.2f}  {views:>6,} views")
PY

printf '\nrun: done in %dm%02ds\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60))
if [ -d dashboard ]; then
  echo "run: dashboard on http://$DASHBOARD — Ctrl-C to stop"
  .venv/bin/python dashboard/server.py --duckdb "$CLICKSTREAM_DUCKDB_PATH" --listen "$DASHBOARD" &
  children+=("$!")
  wait "$!"
fi
