#!/usr/bin/env bash
# End-to-end benchmark: simulated events from the spool to the marts, each stage as the real
# binary or command, on the embedded default (local spool, local lake, DuckDB). Prints a table
# and writes bench/RESULTS.md (e2e section). Run it with `make bench`, or alone:
#   bash scripts/bench-e2e.sh                          # 10 M events
#   BENCH_E2E_EVENTS=200000 bash scripts/bench-e2e.sh  # a quick small run
# Other overrides: BENCH_E2E_SEED (42), BENCH_E2E_DAYS (5), BENCH_E2E_WORK (bench/work/e2e, wiped first).
#
# Stage 0 (not timed against the target): the simulator (fixed seed) plays BENCH_E2E_EVENTS
# events against the release collector, which stores them in a fresh spool (uncapped: 10 M
# events take about 9 GB, beyond the collector's default 8 GiB back-pressure cap).
# Timed stages: `clickstream-batcher run` (spool → lake), `clickstream-batcher compact`,
# `clickstream-loader load` (lake → DuckDB, with its Python DuckDB worker) and `dbt build`
# (target duckdb, as scripts/run-local.sh runs it). Target: spool → marts in under 180 s.
#
# Every stage runs under scripts/bench-measure.py: wall seconds, and the peak of the summed
# RSS of its whole process tree (sampled every 50 ms).
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${BENCH_E2E_EVENTS:-10000000}
DAYS=${BENCH_E2E_DAYS:-5}
SEED=${BENCH_E2E_SEED:-42}
TARGET_SECONDS=180
WORK=${BENCH_E2E_WORK:-bench/work/e2e}
RESULTS=bench/RESULTS.md
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release"

bash scripts/python-env.sh >/dev/null
PY=.venv/bin/python
echo "bench-e2e: building release binaries"
cargo build --release -q -p collector -p batcher -p loader -p simulator

rm -rf "$WORK" && mkdir -p "$WORK"
WORK_ABS=$(realpath -m "$WORK")
export CLICKSTREAM_DUCKDB_PATH="$WORK_ABS/warehouse.duckdb"

collector=
cleanup() { [ -n "$collector" ] && kill "$collector" 2>/dev/null || true; }
trap cleanup EXIT

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "bench-e2e: stage 0: $EVENTS simulated events (seed $SEED, $DAYS days) through the collector on 127.0.0.1:$PORT"
"$BIN/clickstream-collector" --listen "127.0.0.1:$PORT" --spool-dir "$WORK/spool" --rate-limit-per-second 0 --spool-max-bytes 0 \
  --write-key bench-key=storefront >"$WORK/collector.log" 2>&1 &
collector=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$collector" 2>/dev/null || { echo "bench-e2e: the collector exited; see $WORK/collector.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "bench-e2e: the collector did not become ready" >&2; exit 1; }
stage0_started=$(date +%s.%N)
"$BIN/clickstream-simulator" --collector "http://127.0.0.1:$PORT" --write-key bench-key --events "$EVENTS" \
  --days "$DAYS" --seed "$SEED" --concurrency 16 --batch-size 100 --truth "$WORK/truth.json" --no-progress \
  >"$WORK/simulator.log"
kill -TERM "$collector" # graceful: drains requests, seals the open segment
wait "$collector" || true
collector=
STAGE0=$(python3 -c "import time; print(f'{time.time() - $stage0_started:.1f}')")

measure() { # name command...
  local name=$1
  shift
  echo "bench-e2e: $name"
  "$PY" scripts/bench-measure.py "$WORK/$name.measure" -- "$@" >"$WORK/$name.log" 2>&1 || {
    echo "bench-e2e: $name failed; see $WORK/$name.log" >&2
    tail -20 "$WORK/$name.log" >&2
    exit 1
  }
}
measure batcher "$BIN/clickstream-batcher" run --spool-dir "$WORK/spool" --lake "$WORK/lake"
measure compaction "$BIN/clickstream-batcher" compact --lake "$WORK/lake" --closed-before-hours 1
measure loader "$BIN/clickstream-loader" load --lake "$WORK/lake" --duckdb-path "$CLICKSTREAM_DUCKDB_PATH" \
  --duckdb-python "$PWD/$PY"
(cd dbt && "../$PY" ../scripts/bench-measure.py "$WORK_ABS/dbt.measure" -- \
  ../.venv/bin/dbt build --profiles-dir . --target duckdb --target-path "$WORK_ABS/dbt-target" \
  --log-path "$WORK_ABS/dbt-logs" >"$WORK_ABS/dbt.log" 2>&1) || {
  echo "bench-e2e: dbt build failed; see $WORK/dbt.log" >&2
  tail -20 "$WORK/dbt.log" >&2
  exit 1
}

# The events each stage carries: the rows the loader put in raw.events (every stored copy).
read -r RAW MARTS <<<"$("$PY" - "$CLICKSTREAM_DUCKDB_PATH" <<'PY'
import sys
import duckdb

db = duckdb.connect(sys.argv[1], read_only=True)
raw = db.execute("select count(*) from raw.events").fetchone()[0]
marts = db.execute("select sum(events) from analytics.fct_traffic_daily").fetchone()[0]
print(raw, marts)
PY
)"
[ "$RAW" -gt 0 ] || { echo "bench-e2e: raw.events is empty" >&2; exit 1; }

row() { # label name
  read -r seconds rss <"$WORK/$2.measure"
  python3 -c "print(f'| $1 | {$seconds:.1f} | {round($RAW / $seconds):,} | {$rss / 2**20:,.0f} |')"
}
TOTAL=$(cat "$WORK"/{batcher,compaction,loader,dbt}.measure | awk '{s += $1} END {printf "%.1f", s}')
VERDICT=$(python3 -c "print('within' if $TOTAL < $TARGET_SECONDS else 'over')")
TABLE=$(cat <<EOF
| stage | seconds | events/s | peak RSS (MiB, process tree) |
|---|---:|---:|---:|
$(row "batcher \`run\` (spool → hourly Parquet lake)" batcher)
$(row "compaction \`compact --closed-before-hours 1\`" compaction)
$(row "loader \`load\` (lake → DuckDB, incl. its DuckDB worker)" loader)
$(row "\`dbt build\` (target duckdb: models, data tests, unit tests)" dbt)
| **spool → marts** | **$TOTAL** | **$(python3 -c "print(f'{round($RAW / $TOTAL):,}')")** | |
EOF
)
DBT_MODELS=$("$PY" - "$WORK/dbt-target/run_results.json" <<'PY'
import json, sys

results = json.load(open(sys.argv[1]))["results"]
models = sorted((r for r in results if r["unique_id"].startswith("model.")), key=lambda r: -r["execution_time"])
tests = [r for r in results if not r["unique_id"].startswith("model.")]
print("| dbt node | seconds |\n|---|---:|")
for r in models:
    print(f"| {r['unique_id'].split('.')[-1]} | {r['execution_time']:.1f} |")
print(f"| {len(tests)} data and unit tests, together | {sum(r['execution_time'] for r in tests):.1f} |")
PY
)
SUMMARY="Stage 0 (not in the target): $EVENTS simulated events through the collector into the spool in $STAGE0 s. $RAW raw rows (stored copies) reached raw.events and $MARTS modelled events the marts. Spool → marts: **$TOTAL s**, $VERDICT the $TARGET_SECONDS s target."
echo
echo "$TABLE"
echo
echo "$SUMMARY"
echo
echo "$DBT_MODELS"

SECTION=$(cat <<EOF
<!-- BEGIN e2e -->
## End to end: spool → marts (\`make bench\` → scripts/bench-e2e.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m)), release binaries, the embedded default (local spool,
local lake, DuckDB $("$PY" -c 'import duckdb; print(duckdb.__version__)'), dbt-core $("$PY" -c 'from importlib.metadata import version; print(version("dbt-core"))')). The simulator (seed $SEED, $DAYS days) fed
the release collector; each timed stage is the real command, run once, one after the other.
Events/s divide the $RAW raw rows by the stage's seconds. Peak RSS is the largest sum over the
stage's process tree, sampled every 50 ms (scripts/bench-measure.py). Target: spool → marts in
under $TARGET_SECONDS s on 2 cores.

$TABLE

$SUMMARY

The dbt build's models, slowest first (from run_results.json; dbt runs two at a time, so they
overlap):

$DBT_MODELS
<!-- END e2e -->
EOF
)
python3 scripts/bench-results.py "$RESULTS" e2e "$SECTION"
echo "bench-e2e: wrote $RESULTS"
