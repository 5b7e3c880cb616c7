#!/usr/bin/env python3
"""Measure the per-event quantities docs/cost.md prices.

Run the local chain once (collector + simulator, batcher run + compact, loader, and
optionally dbt), then point this script at what it left behind:

    python docs/cost/measure.py \
        --spool SPOOL_COPY_DIR        # a copy of the collector's spool, taken before the batcher drained it
        --lake LAKE_DIR               # the batcher's lake (after `compact`, or before, to compare)
        [--chunk-rows 3500]           # also: Parquet bytes per event for files of that many rows
        --duckdb WAREHOUSE.duckdb     # the loader's warehouse (raw.events, and dbt's models if built)
        [--bq-schema event-model/schema/bigquery-events.json]
        [--models-schema analytics]   # where dbt wrote its models in the DuckDB file
        [--compiled dbt/target/compiled/clickstream]   # a dbt run's compiled SQL: what each model and test reads
        [--dbt-log dbt/logs/dbt.log]  # that run's JSON log: the queries dbt ran while compiling
        [--busy-share 663000]         # also: a collector instance's billable share at that many requests a day
        [--json out.json]

It prints, per event:

1. queue  - Pub/Sub message size: the payload the collector publishes (the spool's record
            payloads are byte for byte the Pub/Sub message data, queue/src/pubsub.rs) plus the
            attributes the Pub/Sub sink sets, 20 bytes of publish timestamp and the message id,
            which is how Pub/Sub counts a message's data volume (cloud.google.com/pubsub/pricing).
2. lake   - Parquet bytes per event, split into compacted day/hour files and hourly batch files
            (and, with --chunk-rows, an estimate for files of a given size).
3. raw    - BigQuery logical bytes per row of raw.events, per column, with BigQuery's documented
            sizes (cloud.google.com/bigquery/pricing, "Data size calculation"): STRING 2 + UTF-8
            bytes, INT64/FLOAT64/TIMESTAMP/DATE/DATETIME/TIME 8, BOOL 1, NUMERIC 16,
            BIGNUMERIC 32, NULL 0. Logical bytes are what on-demand queries are billed for and
            what logical storage billing charges.
4. models - the same for every table dbt built (rows per raw event, bytes per row).
5. scans  - for every compiled model and test, and every query in the dbt log: which columns
            of which table it reads (DuckDB's profiler), and the logical bytes of those columns
            over the rows its partition filter keeps: what BigQuery would bill for that read
            (clustering pruning ignored, so an upper bound; the 10 MB minimum not applied).

--busy-share N adds one modelled (not measured) figure: the billable share of a collector
instance at N requests a day.

Only the Python standard library, duckdb and pyarrow (the project venv has both).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import struct
import sys
import tempfile
from pathlib import Path

# BigQuery logical size of a non-NULL value, by BigQuery type (NULL is 0 bytes).
FIXED_SIZE = {
    "INT64": 8, "INTEGER": 8, "FLOAT64": 8, "FLOAT": 8, "TIMESTAMP": 8, "DATE": 8,
    "DATETIME": 8, "TIME": 8, "BOOL": 1, "BOOLEAN": 1, "NUMERIC": 16, "BIGNUMERIC": 32,
}
VARIABLE = {"STRING", "BYTES"}  # 2 bytes + the UTF-8 (or raw) length; JSON: the UTF-8 length

# The BigQuery type each DuckDB type of the models stands for (dbt's cross-database types).
DUCKDB_TO_BQ = [
    (r"^VARCHAR", "STRING"), (r"^BOOLEAN", "BOOL"), (r"^DECIMAL", "NUMERIC"),
    (r"^(BIGINT|INTEGER|HUGEINT|SMALLINT|TINYINT|UBIGINT)", "INT64"),
    (r"^(DOUBLE|FLOAT|REAL)", "FLOAT64"), (r"^TIMESTAMP", "TIMESTAMP"), (r"^DATE$", "DATE"),
]

# The partition column of each table (BigQuery prunes only on it); others are read whole.
PARTITION_COLUMN = {
    "events": "event_time", "stg_clickstream__events": "event_date",
    "int_events__sessionized": "event_date", "fct_sessions": "session_date",
    "fct_orders": "order_date", "fct_funnel_daily": "funnel_date",
    "fct_events_daily": "event_date", "fct_traffic_daily": "event_date",
    "fct_traffic_hourly": "event_date", "fct_data_quality_daily": "event_date",
}

SPOOL_MAGIC = b"CLKSPL01"
PUBSUB_TIMESTAMP_BYTES = 20  # "20 bytes for the timestamp" (Pub/Sub pricing)
PUBSUB_MESSAGE_ID_BYTES = 16  # message ids are decimal strings of about 16 digits (assumption)


def spool_payloads(stream_dir: Path):
    """Yield every record payload of the spool's segments (format: queue/src/spool/format.rs)."""
    for segment in sorted(stream_dir.glob("*.seg")) + sorted(stream_dir.glob("*.open")):
        data = segment.read_bytes()
        if not data.startswith(SPOOL_MAGIC):
            continue
        at = len(SPOOL_MAGIC)
        while at + 8 <= len(data):
            (length,) = struct.unpack_from("<I", data, at)
            if length == 0 or at + 8 + length > len(data):
                break  # zero padding, or a torn tail
            yield data[at + 8 : at + 8 + length]
            at += 8 + length


def measure_queue(spool: Path) -> dict:
    data_sizes, billable = [], []
    for payload in spool_payloads(spool / "events"):
        event = json.loads(payload)
        # The attributes queue/src/pubsub.rs sets on every event message (keys and values count).
        attributes = {
            "event_id": event.get("event_id", ""),
            "event_type": event.get("event_type", ""),
            "source_id": event.get("source_id", ""),
            "schema_version": "1",
        }
        attribute_bytes = sum(len(k.encode()) + len(str(v).encode()) for k, v in attributes.items())
        data_sizes.append(len(payload))
        billable.append(len(payload) + attribute_bytes + PUBSUB_TIMESTAMP_BYTES + PUBSUB_MESSAGE_ID_BYTES)
    failed = list(spool_payloads(spool / "failed"))
    if not data_sizes:
        raise SystemExit(f"no spool records under {spool}/events (copy the spool before the batcher drains it)")
    quantiles = statistics.quantiles(data_sizes, n=20)
    return {
        "messages": len(data_sizes),
        "data_bytes_mean": statistics.fmean(data_sizes),
        "data_bytes_p50": statistics.median(data_sizes),
        "data_bytes_p95": quantiles[18],
        "billable_bytes_mean": statistics.fmean(billable),
        "dead_letter_records": len(failed),
        "dead_letter_per_event": len(failed) / len(data_sizes),
    }


def measure_lake(lake: Path) -> dict:
    import pyarrow.parquet as pq

    kinds: dict[str, dict] = {}
    columns: dict[str, int] = {}
    for path in sorted((lake / "events").rglob("*.parquet")):
        meta = pq.ParquetFile(path).metadata
        kind = "compacted" if path.name.startswith("compacted-") else "hourly batch"
        entry = kinds.setdefault(kind, {"files": 0, "rows": 0, "bytes": 0})
        entry["files"] += 1
        entry["rows"] += meta.num_rows
        entry["bytes"] += path.stat().st_size
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                col = group.column(c)
                columns[col.path_in_schema] = columns.get(col.path_in_schema, 0) + col.total_compressed_size
    for entry in kinds.values():
        entry["bytes_per_event"] = entry["bytes"] / entry["rows"] if entry["rows"] else None
    rows = sum(e["rows"] for e in kinds.values())
    top = sorted(columns.items(), key=lambda kv: -kv[1])[:8]
    return {
        "kinds": kinds,
        "rows": rows,
        "bytes_per_event": sum(e["bytes"] for e in kinds.values()) / rows if rows else None,
        "largest_columns_bytes_per_event": {k: v / rows for k, v in top} if rows else {},
    }


def rewrite_in_chunks(lake: Path, rows_per_file: int) -> dict:
    """Parquet bytes per event if the lake's compacted rows were written in files of
    `rows_per_file` rows (in event_time order), as the Pub/Sub batcher's flushes write them
    before compaction. pyarrow's writer, zstd level 1 like the batcher (bench/RESULTS.md: its
    files are within ~15% of pyarrow's); an estimate, not the batcher's own output."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in sorted((lake / "events").rglob("compacted-*.parquet"))]
    if not tables:
        return {}
    table = pa.concat_tables(tables, promote_options="default").sort_by("event_time")
    total = 0
    for start in range(0, table.num_rows, rows_per_file):
        buffer = io.BytesIO()
        pq.write_table(table.slice(start, rows_per_file), buffer, compression="zstd", compression_level=1)
        total += buffer.tell()
    return {"rows_per_file": rows_per_file, "rows": table.num_rows, "bytes_per_event": total / table.num_rows}


def size_expr(column: str, bq_type: str) -> str:
    """DuckDB SQL for the BigQuery logical size of `column` in one row."""
    quoted = f'"{column}"'
    if bq_type in VARIABLE:
        return f"coalesce(2 + strlen(cast({quoted} as varchar)), 0)"
    if bq_type == "JSON":
        return f"coalesce(strlen(cast({quoted} as varchar)), 0)"
    return f"(case when {quoted} is null then 0 else {FIXED_SIZE[bq_type]} end)"


def bq_type_of(duckdb_type: str) -> str:
    for pattern, bq in DUCKDB_TO_BQ:
        if re.match(pattern, duckdb_type):
            return bq
    raise ValueError(f"no BigQuery type for DuckDB type {duckdb_type}")


def table_types(con, schema: str, table: str, bq_schema: dict | None = None) -> dict[str, str]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return {name: (bq_schema or {}).get(name) or bq_type_of(dtype) for name, dtype in rows}


def column_bytes(con, schema: str, table: str, types: dict[str, str], where: str = "true") -> tuple[int, dict]:
    """(rows, {column: total logical bytes}) of `schema.table` over the rows `where` keeps."""
    sums = ", ".join(f"sum({size_expr(c, t)})" for c, t in types.items())
    row = con.execute(f'select count(*), {sums} from "{schema}"."{table}" where {where}').fetchone()
    return row[0], {c: int(v or 0) for c, v in zip(types, row[1:])}


def measure_raw(con, bq_schema: dict) -> dict:
    types = table_types(con, "raw", "events", bq_schema)
    rows, sizes = column_bytes(con, "raw", "events", types)
    return {
        "rows": rows,
        "days": con.execute("select count(distinct cast(event_time as date)) from raw.events").fetchone()[0],
        "bytes_per_row": sum(sizes.values()) / rows,
        "columns": {c: {"type": types[c], "bytes_per_row": b / rows} for c, b in sizes.items()},
    }


def measure_models(con, schema: str, raw_rows: int) -> dict:
    tables = [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = ? order by 1", [schema]).fetchall()]
    out = {}
    for table in tables:
        types = table_types(con, schema, table)
        rows, sizes = column_bytes(con, schema, table, types)
        total = sum(sizes.values())
        out[table] = {
            "rows": rows,
            "rows_per_raw_event": rows / raw_rows,
            "bytes_per_row": total / rows if rows else 0,
            "bytes_per_raw_event": total / raw_rows,
            "columns": {c: b / rows if rows else 0 for c, b in sizes.items()},
        }
    return out


def table_scans(con, sql: str, profile: Path) -> list[dict]:
    """Table scans of `sql` under DuckDB's profiler: table, columns read, filters."""
    # Without statistics propagation DuckDB keeps every scan the SQL asks for (it would
    # otherwise skip, for example, `where col is null` on a column it knows has no NULLs;
    # BigQuery reads the column anyway).
    con.execute("set disabled_optimizers = 'statistics_propagation'")
    con.execute("set enable_profiling = 'json'")
    con.execute(f"set profiling_output = '{profile}'")
    try:
        con.execute(sql).fetchall()
    finally:
        con.execute("pragma disable_profiling")
        con.execute("reset disabled_optimizers")
    scans = []

    def walk(node):
        info = node.get("extra_info") or {}
        if node.get("type") == "TABLE_SCAN" and "Table" in info:
            projections = info.get("Projections") or []
            projections = [projections] if isinstance(projections, str) else projections
            filters = info.get("Filters") or []
            filters = [filters] if isinstance(filters, str) else filters
            scans.append({"table": info["Table"].split(".")[-1].strip('"'),
                          "schema": info["Table"].split(".")[-2].strip('"'),
                          "projections": projections, "filters": filters})
        for child in node.get("children", []):
            walk(child)

    tree = json.loads(profile.read_text())
    for node in tree["operator"] if isinstance(tree.get("operator"), list) else [tree.get("operator", {})]:
        walk(node)
    return scans


def reads_to_measure(compiled: Path | None, dbt_log: Path | None):
    """(name, SELECT) of every compiled model and test, and of every query dbt ran while
    compiling (the partition plans, staging's dedupe check: run_query in the macros),
    taken from a JSON dbt log (`--log-format-file json`)."""
    if compiled:
        for path in sorted(compiled.rglob("*.sql")):
            yield str(path.relative_to(compiled)), path.read_text()
    if dbt_log:
        count: dict[str, int] = {}
        for line in dbt_log.read_text().splitlines():
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event["info"]["name"] != "SQLQuery":
                continue
            sql = event["data"]["sql"]
            unique_id = (event["data"].get("node_info") or {}).get("unique_id", "")
            if not unique_id.startswith("model.") or "__dbt_tmp" in sql:
                continue  # tests are measured from their compiled SQL; temp tables are DuckDB's own
            if re.search(r"information_schema|duckdb_|pg_catalog|\bsystem\.", sql):
                continue  # catalog look-ups: BigQuery answers them from metadata, unbilled
            node = unique_id.split(".")[-1]
            count[node] = count.get(node, 0) + 1
            yield f"log:{node}#{count[node]}", sql


def measure_scans(con, reads, bq_schema: dict, profile: Path) -> dict:
    """Bytes each read would be billed on BigQuery, measured on this warehouse."""
    out = {}
    cache: dict[tuple, dict] = {}
    for name, text in reads:
        sql = re.sub(r"/\*.*?\*/", "", text, flags=re.S).strip()
        if not re.match(r"(?is)^(with|select)\b", sql):
            continue
        try:
            scans = table_scans(con, sql, profile)
        except Exception as error:  # a model whose SQL needs what this warehouse lacks
            out[name] = {"error": str(error).splitlines()[0]}
            continue
        reads, total = [], 0
        for scan in scans:
            key = (scan["schema"], scan["table"])
            if key not in cache:
                cache[key] = table_types(con, *key, bq_schema if key == ("raw", "events") else None)
            types = cache[key]
            partition = PARTITION_COLUMN.get(scan["table"])
            # columns read: the projections and every column a filter names
            names = {p for p in scan["projections"] if p in types}
            for f in scan["filters"]:
                names |= {c for c in types if re.search(rf"\b{re.escape(c)}\b", f)}
            # rows kept by the partition filter only (BigQuery prunes partitions, not rows):
            # comparisons of the partition column with a date or timestamp literal
            kept = [f for f in scan["filters"] if partition
                    and re.search(rf"\b{partition}\b\s*(>=|<=|>|<|=)\s*'", f)]
            where = " and ".join(kept) or "true"
            rows, sizes = column_bytes(con, *key, {c: types[c] for c in sorted(names)}, where)
            billed = sum(sizes.values())
            total += billed
            reads.append({"table": scan["table"], "columns": sorted(names), "partition_filter": kept,
                          "rows": rows, "bytes": billed, "bytes_per_row": billed / rows if rows else 0})
        out[name] = {"bytes": total, "reads": reads}
    return out


def busy_share(requests_per_day: float, request_s: float = 0.030, preflight_s: float = 0.003,
               preflight_share: float = 0.25, seed: int = 1) -> float:
    """Not a measurement: the share of a day one Cloud Run instance is billable under
    request-based billing (at least one request in flight, each busy period rounded up to
    100 ms), for Poisson arrivals on a daily curve (evening peak 1.75x the mean, night 0.25x).
    docs/cost.md's collector line uses it; one simulated day, slow above ~10 M requests."""
    import math
    import random

    rng = random.Random(seed)
    curve = lambda t: 1 + 0.75 * math.sin((t / 3600 - 14) / 24 * 2 * math.pi)  # noqa: E731
    peak = requests_per_day / 86400 * 1.75
    rounded = lambda start, end: math.ceil((end - start) / 0.1 - 1e-9) * 0.1  # noqa: E731
    t, start, end, billed = 0.0, None, None, 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= 86400:
            break
        if rng.random() > curve(t) / 1.75:
            continue  # thinning: arrivals follow the daily curve
        duration = preflight_s if rng.random() < preflight_share else request_s
        if start is not None and t <= start + rounded(start, end):
            end = max(end, t + duration)  # joins the current billable period
            continue
        if start is not None:
            billed += rounded(start, end)
        start, end = t, t + duration
    if start is not None:
        billed += rounded(start, end)
    return billed / 86400


def main() -> None:
    here = Path(__file__).resolve()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spool", type=Path, help="copy of the collector's spool directory (events/, failed/)")
    parser.add_argument("--lake", type=Path, help="the batcher's lake directory")
    parser.add_argument("--duckdb", type=Path, help="the loader's DuckDB warehouse")
    parser.add_argument("--bq-schema", type=Path,
                        default=here.parents[2] / "event-model" / "schema" / "bigquery-events.json")
    parser.add_argument("--chunk-rows", type=int, action="append", default=[],
                        help="also estimate Parquet bytes per event for files of this many rows (repeatable)")
    parser.add_argument("--models-schema", default="analytics")
    parser.add_argument("--compiled", type=Path, help="dbt target/compiled/clickstream of a run")
    parser.add_argument("--dbt-log", type=Path, help="that run's JSON log (dbt --log-format-file json)")
    parser.add_argument("--busy-share", type=float, action="append", default=[], metavar="REQUESTS_PER_DAY",
                        help="also print the simulated billable share of one collector instance (repeatable)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    result: dict = {}

    if args.spool:
        q = result["queue"] = measure_queue(args.spool)
        print(f"queue: {q['messages']} messages, data {q['data_bytes_mean']:.0f} B mean "
              f"(p50 {q['data_bytes_p50']:.0f}, p95 {q['data_bytes_p95']:.0f}), "
              f"Pub/Sub-billable {q['billable_bytes_mean']:.0f} B per message; "
              f"{q['dead_letter_records']} dead letters ({q['dead_letter_per_event']:.2%} of events)")
    if args.lake:
        lk = result["lake"] = measure_lake(args.lake)
        for kind, e in lk["kinds"].items():
            print(f"lake {kind}: {e['files']} files, {e['rows']} rows, {e['bytes']} bytes, "
                  f"{e['bytes_per_event']:.1f} B per event")
        for n in args.chunk_rows:
            c = lk.setdefault("chunked", {})[n] = rewrite_in_chunks(args.lake, n)
            if c:
                print(f"lake rewritten in files of {n} rows (pyarrow, zstd 1): {c['bytes_per_event']:.1f} B per event")
        print("lake largest columns (B per event): "
              + ", ".join(f"{k} {v:.1f}" for k, v in lk["largest_columns_bytes_per_event"].items()))
    if args.duckdb:
        import duckdb

        bq_schema = {f["name"]: f["type"] for f in json.loads(args.bq_schema.read_text())}
        con = duckdb.connect(str(args.duckdb), read_only=True)
        raw = result["raw"] = measure_raw(con, bq_schema)
        print(f"raw.events: {raw['rows']} rows over {raw['days']} days, "
              f"{raw['bytes_per_row']:.1f} logical B per row")
        for c, v in sorted(raw["columns"].items(), key=lambda kv: -kv[1]["bytes_per_row"]):
            print(f"  {c:26} {v['type']:9} {v['bytes_per_row']:8.1f}")
        models = con.execute("select count(*) from information_schema.tables where table_schema = ?",
                             [args.models_schema]).fetchone()[0]
        if models:
            m = result["models"] = measure_models(con, args.models_schema, raw["rows"])
            print(f"models in {args.models_schema} (rows per raw event, logical B per row, B per raw event):")
            for t, v in m.items():
                print(f"  {t:28} {v['rows_per_raw_event']:8.4f} {v['bytes_per_row']:8.1f} {v['bytes_per_raw_event']:8.1f}")
        if args.compiled or args.dbt_log:
            with tempfile.TemporaryDirectory() as scratch:
                reads = reads_to_measure(args.compiled, args.dbt_log)
                s = result["scans"] = measure_scans(con, reads, bq_schema, Path(scratch) / "profile.json")
            print("reads of each compiled node on this warehouse (logical bytes; per raw event):")
            for node, v in s.items():
                if node.startswith("log:") and not v.get("reads"):
                    continue  # a DuckDB bookkeeping statement that reads no table
                if "error" in v:
                    print(f"  {node}: not measured ({v['error']})")
                    continue
                print(f"  {node}: {v['bytes']} B ({v['bytes'] / raw['rows']:.1f} per raw event)")
                for r in v["reads"]:
                    print(f"      {r['table']}: {len(r['columns'])} columns, {r['rows']} rows, "
                          f"{r['bytes_per_row']:.1f} B/row, partition filter {r['partition_filter'] or 'none'}")
    for requests in args.busy_share:
        share = result.setdefault("busy_share", {})[requests] = busy_share(requests)
        print(f"collector busy share at {requests:,.0f} requests a day: {share:.1%}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    if not result:
        sys.exit("nothing to measure: give --spool, --lake, --duckdb and/or --busy-share")


if __name__ == "__main__":
    main()
