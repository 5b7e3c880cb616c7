#!/usr/bin/env bash
# Batcher core throughput: queue messages (stored events as JSON lines) → zstd Parquet, on one
# core, against DuckDB's `COPY (SELECT * FROM read_json(...)) TO ... (FORMAT parquet)`,
# pyarrow's JSON reader + Parquet writer, DataFusion's JSON table written as Parquet and polars'
# `read_ndjson` + `write_parquet`, on the same generated input, in the same run. Prints a
# table and writes bench/RESULTS.md (batcher section). Run it with `make bench`.
#
# Every contender gets the contract's typed schema (DECIMAL(38,9) money, UTC timestamps), one
# thread (taskset on CPU 0, and each tool's own thread setting), and zstd compression.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${BENCH_BATCHER_EVENTS:-500000}
RUNS=${BENCH_RUNS:-5}
WORK=bench/work/batcher
RESULTS=bench/RESULTS.md
TARGET_DIR=${CARGO_TARGET_DIR:-target}

bash scripts/python-env.sh >/dev/null
PY=.venv/bin/python
echo "bench: building release binaries"
cargo build --release -q -p benchmarks
CORE="$TARGET_DIR/release/batcher-core"

rm -rf "$WORK" && mkdir -p "$WORK"
echo "bench: generating $EVENTS events"
"$CORE" generate "$EVENTS" "$WORK/events.jsonl"
BYTES=$(stat -c %s "$WORK/events.jsonl")

best() { sort -n | head -1; }

run_ours() { # [zstd level]; the batcher's default settings without one
  rm -rf "$WORK/ours${1:-}"
  taskset -c 0 "$CORE" convert "$WORK/events.jsonl" "$WORK/ours${1:-}" ${1:-} | awk '{print $2}'
}

run_python() { # duckdb|pyarrow|datafusion|polars
    rm -rf "$WORK/$1" && mkdir -p "$WORK/$1"
    POLARS_MAX_THREADS=1 taskset -c 0 "$PY" - "$1" "$WORK/events.jsonl" "$WORK/$1" event-model/schema/bigquery-events.json <<'PY'
import json, sys, time
tool, source, out, schema_file = sys.argv[1:5]
fields = json.load(open(schema_file))
if tool == "duckdb":
    import duckdb
    types = {"STRING": "VARCHAR", "BOOLEAN": "BOOLEAN", "TIMESTAMP": "TIMESTAMPTZ", "NUMERIC": "DECIMAL(38,9)", "INTEGER": "BIGINT"}
    columns = "{" + ", ".join(f"'{f['name']}': '{types[f['type']]}'" for f in fields) + "}"
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = false")
    started = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_json('{source}', format='newline_delimited', columns={columns})) "
                f"TO '{out}/events.parquet' (FORMAT parquet, COMPRESSION zstd)")
    elapsed = time.perf_counter() - started
elif tool == "datafusion":
    import pyarrow as pa
    from datafusion import SessionConfig, SessionContext
    types = {"STRING": pa.string(), "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us", tz="UTC"), "NUMERIC": pa.decimal128(38, 9), "INTEGER": pa.int64()}
    schema = pa.schema([(f["name"], types[f["type"]]) for f in fields])
    ctx = SessionContext(SessionConfig().with_target_partitions(1))
    started = time.perf_counter()
    ctx.register_json("events", source, schema=schema, file_extension=".jsonl")
    ctx.table("events").write_parquet(f"{out}/events.parquet", compression="zstd")
    elapsed = time.perf_counter() - started
elif tool == "polars":
    import polars as pl  # one thread: POLARS_MAX_THREADS=1, set before the import
    types = {"STRING": pl.String, "BOOLEAN": pl.Boolean, "TIMESTAMP": pl.Datetime("us", "UTC"), "NUMERIC": pl.Decimal(38, 9), "INTEGER": pl.Int64}
    # polars' JSON reader cannot read decimals from JSON strings either: strings, then a cast.
    read_schema = {f["name"]: pl.String if f["type"] == "NUMERIC" else types[f["type"]] for f in fields}
    money = [f["name"] for f in fields if f["type"] == "NUMERIC"]
    started = time.perf_counter()
    frame = pl.read_ndjson(source, schema=read_schema).with_columns(pl.col(money).cast(pl.Decimal(38, 9)))
    frame.write_parquet(f"{out}/events.parquet", compression="zstd")
    elapsed = time.perf_counter() - started
else:
    import pyarrow as pa, pyarrow.json as pj, pyarrow.parquet as pq, pyarrow.compute as pc
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    types = {"STRING": pa.string(), "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us", tz="UTC"), "NUMERIC": pa.decimal128(38, 9), "INTEGER": pa.int64()}
    # pyarrow's JSON reader cannot read decimals from JSON strings: read them as strings, then cast.
    read_schema = pa.schema([(f["name"], pa.string() if f["type"] == "NUMERIC" else types[f["type"]]) for f in fields])
    started = time.perf_counter()
    table = pj.read_json(source, read_options=pj.ReadOptions(use_threads=False, block_size=1 << 24),
                         parse_options=pj.ParseOptions(explicit_schema=read_schema))
    for f in fields:
        if f["type"] == "NUMERIC":
            i = table.schema.get_field_index(f["name"])
            table = table.set_column(i, f["name"], pc.cast(table.column(i), pa.decimal128(38, 9)))
    pq.write_table(table, f"{out}/events.parquet", compression="zstd")
    elapsed = time.perf_counter() - started
print(f"{elapsed:.3f}")
PY
}

# Rounds run every converter once, in turn, so a drift in the machine's speed during the
# benchmark (this VM's varies by about 10% over minutes) reaches all of them alike.
: >"$WORK/times"
for round in $(seq "$RUNS"); do
  echo "bench: round $round of $RUNS"
  echo "ours $(run_ours)" >>"$WORK/times"
  echo "ours3 $(run_ours 3)" >>"$WORK/times"
  echo "duckdb $(run_python duckdb)" >>"$WORK/times"
  echo "pyarrow $(run_python pyarrow)" >>"$WORK/times"
  echo "datafusion $(run_python datafusion)" >>"$WORK/times"
  echo "polars $(run_python polars)" >>"$WORK/times"
done
time_of() { awk -v tool="$1" '$1 == tool {print $2}' "$WORK/times" | best; }
median_of() { awk -v tool="$1" '$1 == tool {print $2}' "$WORK/times" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
OURS=$(time_of ours)
OURS3=$(time_of ours3)
DUCK=$(time_of duckdb)
ARROW=$(time_of pyarrow)
FUSION=$(time_of datafusion)
POLARS=$(time_of polars)

# The outputs must hold the same rows.
ROWS=$("$PY" -c "
import duckdb, sys
for d in sys.argv[1:]:
    print(duckdb.sql(f\"select count(*) from read_parquet('{d}/*.parquet')\").fetchall()[0][0])
" "$WORK/ours" "$WORK/ours3" "$WORK/duckdb" "$WORK/pyarrow" "$WORK/datafusion" "$WORK/polars" | sort -u)
[ "$(echo "$ROWS" | wc -l)" = 1 ] && [ "$ROWS" = "$EVENTS" ] || { echo "bench: row counts differ: $ROWS" >&2; exit 1; }

rate() { python3 -c "print(round($EVENTS / $1))"; }
ratio() { python3 -c "print(f'{$2 / $1:.2f}')"; }
size() { du -sb "$1" | cut -f1; }
TABLE=$(cat <<EOF
| converter (1 core) | seconds (best of $RUNS) | events/s | Parquet bytes | ratio to DuckDB |
|---|---:|---:|---:|---:|
| clickstream batcher core (defaults: zstd level 1) | $OURS | $(rate "$OURS") | $(size "$WORK/ours") | **$(ratio "$OURS" "$DUCK")** |
| clickstream batcher core, zstd level 3 | $OURS3 | $(rate "$OURS3") | $(size "$WORK/ours3") | $(ratio "$OURS3" "$DUCK") |
| DuckDB \`COPY … read_json … TO parquet\` | $DUCK | $(rate "$DUCK") | $(size "$WORK/duckdb") | 1.00 |
| pyarrow \`json.read_json\` + \`parquet.write_table\` | $ARROW | $(rate "$ARROW") | $(size "$WORK/pyarrow") | $(ratio "$ARROW" "$DUCK") |
| DataFusion \`register_json\` + \`write_parquet\` (target_partitions 1) | $FUSION | $(rate "$FUSION") | $(size "$WORK/datafusion") | $(ratio "$FUSION" "$DUCK") |
| polars \`read_ndjson\` + \`write_parquet\` (POLARS_MAX_THREADS=1) | $POLARS | $(rate "$POLARS") | $(size "$WORK/polars") | $(ratio "$POLARS" "$DUCK") |
EOF
)
MEDIANS="Median of the $RUNS rounds instead of the best: batcher core $(median_of ours) s, DuckDB $(median_of duckdb) s, ratio $(ratio "$(median_of ours)" "$(median_of duckdb)") (at zstd level 3: $(ratio "$(median_of ours3)" "$(median_of duckdb)"))."
echo
echo "$TABLE"
echo
echo "$MEDIANS"

SECTION=$(cat <<EOF
<!-- BEGIN batcher -->
## Batcher core: JSON → Parquet (\`make bench\` → scripts/bench-batcher.sh)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m)); $EVENTS generated events, $BYTES bytes of JSON lines (the
queue encoding), each converter pinned to CPU 0 with one thread, zstd, the contract's typed
schema; best of $RUNS runs. Our core includes hour grouping and de-duplication by event_id; DuckDB
($("$PY" -c 'import duckdb; print(duckdb.__version__)')), pyarrow ($("$PY" -c 'import pyarrow; print(pyarrow.__version__)')), DataFusion ($("$PY" -c 'import datafusion; print(datafusion.__version__)')) and polars ($("$PY" -c 'import polars; print(polars.__version__)')) write one
file. Target: ≥ 1.5× DuckDB's events/s.

Each tool runs at its own default zstd level: the batcher's is 1, DuckDB's is 3, pyarrow's is 1,
DataFusion's (python binding) is 4 and polars' is 3.
Our core's row at level 3 is there for a like-for-like comparison with DuckDB.

$TABLE

$MEDIANS
<!-- END batcher -->
EOF
)
python3 scripts/bench-results.py "$RESULTS" batcher "$SECTION"
echo "bench: wrote $RESULTS"
