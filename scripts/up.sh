#!/usr/bin/env bash
# `make up`: build what the local twin needs, then keep it running (scripts/up.py): the collector,
# the demo storefront, a live simulator, the hourly and nightly flows on the production schedule,
# and the dashboard. State lives in .clickstream/ (CLICKSTREAM_HOME) and is kept between runs.
#
# Settings (environment): CLICKSTREAM_UP_INTERVAL_SECONDS (60), CLICKSTREAM_UP_RATE (simulator
# events/s, 2; 0 = off), CLICKSTREAM_LISTEN (127.0.0.1:8080), CLICKSTREAM_STOREFRONT_LISTEN
# (127.0.0.1:8060), CLICKSTREAM_DASHBOARD_LISTEN (127.0.0.1:8050), CLICKSTREAM_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
say() { printf 'up: %s (at %dm%02ds)\n' "$1" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }

say "building the binaries (release, embedded path only; see scripts/run-local.sh)"
cargo build --release --no-default-features -p collector -p batcher -p loader -p simulator
say "setting up the Python environment (dbt, DuckDB)"
bash scripts/python-env.sh
say "building the dashboard"
bash dashboard/scripts/build.sh >/dev/null
if [[ ! -f storefront-sdk/dist/clickstream.min.js || -n "$(find storefront-sdk/src -newer storefront-sdk/dist/clickstream.min.js -print -quit)" ]]; then
  say "building the storefront SDK for the demo shop"
  (cd storefront-sdk && npm ci --no-audit --no-fund --prefer-offline >/dev/null && npm run build >/dev/null)
fi
say "starting"
exec .venv/bin/python scripts/up.py
