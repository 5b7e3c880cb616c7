#!/usr/bin/env bash
# Collector load test: single-event and 100-event-batch throughput and p99 latency of the
# collector on the local spool (fsync'd group commit, the embedded default), side by side with
# a bare axum handler in the same run. Prints a table and writes bench/RESULTS.md (collector
# section). Not a timed test: run it with `make bench`.
#
# Load comes from wrk on loopback, bounded in time (BENCH_SECONDS per case).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_CASE=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
WORK=bench/work/collector
RESULTS=bench/RESULTS.md
TARGET_DIR=${CARGO_TARGET_DIR:-target}

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian) for load generation"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

echo "bench: building release binaries"
cargo build --release -q -p collector -p benchmarks
COLLECTOR="$TARGET_DIR/release/clickstream-collector"
BARE="$TARGET_DIR/release/bare-axum-handler"

rm -rf "$WORK" && mkdir -p "$WORK"
python3 - "$WORK" <<'PY'
import json, sys, uuid
work = sys.argv[1]
def event(i):
    return {
        "event_id": str(uuid.UUID(int=i + 1)),
        "event_type": "product_view",
        "event_time": "2026-11-24T10:15:30.120Z",
        "anonymous_id": f"anon-{i % 977}",
        "session_id": f"s-{i % 331}",
        "page": {"url": f"https://shop.example/p/{i % 5000}?utm_source=newsletter", "title": "Acme Phone 12",
                 "referrer": "https://www.google.com/"},
        "product": {"product_id": str(1000000 + i % 5000), "category_code": "electronics.smartphone",
                    "brand": "acme", "price": 489.07, "currency": "EUR"},
        "context": {"platform": "web", "locale": "en-GB", "screen": {"width": 1440, "height": 900},
                    "library": {"name": "clickstream-js", "version": "0.1.0"}},
    }
single = event(0)
single["sent_at"] = "2026-11-24T10:15:31Z"
open(f"{work}/single.json", "w").write(json.dumps(single))
open(f"{work}/batch100.json", "w").write(json.dumps({"sent_at": "2026-11-24T10:15:31Z", "events": [event(i) for i in range(100)]}))
PY
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Write-Key"] = "bench-key"
wrk.headers["User-Agent"] = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
local file = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = file:read("*a")
file:close()
LUA

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "bench: server on $1 did not start" >&2; return 1; }

CLK_TCK=$(getconf CLK_TCK)
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
trap stop_server EXIT

declare -A RPS P99 EPS ALL CPU
run_case() { # name body-file events-per-request
  local name=$1 body=$2 per=$3 port
  port=$(free_port)
  case $name in
    bare-*) "$BARE" "127.0.0.1:$port" & ;;
    collector-*) rm -rf "$WORK/spool"
      RUST_LOG=warn "$COLLECTOR" --listen "127.0.0.1:$port" --spool-dir "$WORK/spool" \
        --write-key bench-key=bench --rate-limit-per-second 0 >/dev/null 2>&1 & ;;
  esac
  SERVER_PID=$!
  wait_port "$port"
  BODY_FILE=$body wrk -t1 -c"$CONNECTIONS" -d2s -s "$WORK/post.lua" "http://127.0.0.1:$port/v1/events" >/dev/null
  local cpu_before cpu_after
  cpu_before=$(cpu_ticks "$SERVER_PID")
  BODY_FILE=$body wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_CASE}s" --latency -s "$WORK/post.lua" \
    "http://127.0.0.1:$port/v1/events" > "$WORK/$name.txt"
  cpu_after=$(cpu_ticks "$SERVER_PID")
  stop_server
  if grep -q "Non-2xx" "$WORK/$name.txt"; then
    echo "bench: $name had non-2xx answers:" >&2; cat "$WORK/$name.txt" >&2; exit 1
  fi
  local rps p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/$name.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/$name.txt")
  echo "bench: $name ${rps} req/s, p99 ${p99}"
  ALL[$name]="${ALL[$name]:+${ALL[$name]} / }$(python3 -c "print(round($rps))")"
  # The server's CPU time (user + system, all threads) per request during the measured run.
  CPU[$name]="${CPU[$name]:+${CPU[$name]} }$(python3 -c "print(round(($cpu_after - $cpu_before) / $CLK_TCK * 1e6 / ($rps * $SECONDS_PER_CASE), 1))")"
  # Keep each case's best round (with that round's p99).
  if [ -z "${RPS[$name]:-}" ] || python3 -c "import sys; sys.exit(0 if $rps > ${RPS[$name]} else 1)"; then
    RPS[$name]=$rps
    P99[$name]=$p99
    EPS[$name]=$(python3 -c "print(round($rps * $per))")
  fi
}

# Rounds run every case once, in turn, so a drift in the machine's speed (this VM's varies by
# 10-20% over minutes) reaches the collector and its peer alike.
for round in $(seq "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS"
  run_case bare-single "$WORK/single.json" 1
  run_case collector-single "$WORK/single.json" 1
  run_case bare-batch100 "$WORK/batch100.json" 100
  run_case collector-batch100 "$WORK/batch100.json" 100
done
rm -rf "$WORK/spool"

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
SINGLE_RATIO=$(ratio "${RPS[collector-single]}" "${RPS[bare-single]}")
BATCH_RATIO=$(ratio "${RPS[collector-batch100]}" "${RPS[bare-batch100]}")
# Each round's collector rate over the same round's bare rate, run back to back, and their
# median: the drift of the machine's speed between rounds cancels out of it.
paired() { # collector-rounds bare-rounds -> "median (r1 / r2 / ...)"
  python3 - "$1" "$2" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split(" / ")]
b = [float(x) for x in sys.argv[2].split(" / ")]
r = [x / y for x, y in zip(c, b)]
print(f"{statistics.median(r):.2f} ({' / '.join(f'{x:.2f}' for x in r)})")
PY
}
SINGLE_PAIRED=$(paired "${ALL[collector-single]}" "${ALL[bare-single]}")
BATCH_PAIRED=$(paired "${ALL[collector-batch100]}" "${ALL[bare-batch100]}")
median() { python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])):.1f}')" $1; }

TABLE=$(cat <<EOF
| case | server | requests/s (best round) | events/s | p99 latency | server CPU per request (median) | ratio to bare, best rounds | ratio to bare, same round: median (each round) | every round (requests/s) |
|---|---|---:|---:|---:|---:|---:|---:|---:|
| single event | bare axum handler | ${RPS[bare-single]} | ${EPS[bare-single]} | ${P99[bare-single]} | $(median "${CPU[bare-single]}") µs | 1.00 | 1.00 | ${ALL[bare-single]} |
| single event | collector, spool sink | ${RPS[collector-single]} | ${EPS[collector-single]} | ${P99[collector-single]} | $(median "${CPU[collector-single]}") µs | **${SINGLE_RATIO}** | **${SINGLE_PAIRED%% *}** ${SINGLE_PAIRED#* } | ${ALL[collector-single]} |
| 100-event batch | bare axum handler | ${RPS[bare-batch100]} | ${EPS[bare-batch100]} | ${P99[bare-batch100]} | $(median "${CPU[bare-batch100]}") µs | 1.00 | 1.00 | ${ALL[bare-batch100]} |
| 100-event batch | collector, spool sink | ${RPS[collector-batch100]} | ${EPS[collector-batch100]} | ${P99[collector-batch100]} | $(median "${CPU[collector-batch100]}") µs | **${BATCH_RATIO}** | **${BATCH_PAIRED%% *}** ${BATCH_PAIRED#* } | ${ALL[collector-batch100]} |
EOF
)
echo
echo "$TABLE"

SECTION=$(cat <<EOF
<!-- BEGIN collector -->
## Collector ingestion (\`make bench\` → scripts/bench-collector.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m)), wrk with 1 thread and ${CONNECTIONS} connections on
loopback, ${SECONDS_PER_CASE} s per case after a 2 s warm-up; load generator and server share the machine.
${ROUNDS} rounds, each running every case once in turn. This VM's speed drifts by 10-20% over
minutes, so the table gives two ratios: best round against best round, and the median of each
round's collector rate over the bare rate measured just before it, which the drift affects
least. Server CPU is the server process's user + system time per request, all threads (for
the collector that includes the spool writer's fsyncs), the median over the rounds.

$TABLE

- **Collector**: release build, spool sink (every 2xx is fsync'd, group commit), write-key auth,
  full validation, enrichment (skew correction, IP truncation, user-agent parsing), dead-letter
  stream; rate limiting off (\`--rate-limit-per-second 0\`).
- **Bare axum handler** (\`bench/src/bin/bare_axum_handler.rs\`): reads the body, parses it as JSON,
  answers 200 — no auth, validation, enrichment or durability.
- Target: collector ≥ 0.7× the bare handler's requests/s, by both ratios.
<!-- END collector -->
EOF
)
python3 scripts/bench-results.py "$RESULTS" collector "$SECTION"
echo "bench: wrote $RESULTS"
