"""The hourly build's cost does not grow with history (DuckDB).

Two warehouses get a generated history, one 10x as long as the other (2 and
20 days), loaded the way the loader loads (history.py), and a full build of
the hourly models. Then both receive the same new loads (a late file for
the newest day, and the next day) and run the same `dbt run --selector
hourly`. Every read that run made is replayed under DuckDB's profiler
(`enable_profiling = 'json'`): the SELECTs dbt issued while compiling the
models (the partition plans, staging's dedupe neighbour check), read from
dbt's JSON log, and each model's compiled SELECT (the query its
materialization wraps). The raw rows read (rows_scanned of the scans of
raw.events) must be the same for both histories.

Why days of exactly 122,880 raw rows: DuckDB skips data by row-group zone
maps, and a row group holds 122,880 rows. Loaded a day per transaction in
event_time order, the table is sorted by time, but when it checkpoints,
DuckDB packs the rows into full row groups, so with any other day size a
row group straddles two days, and a read of whole days also reads the part
of the neighbouring day sharing its edge row groups: how much depends on
the history length modulo 122,880, not on its growth. With days of one row
group each, the rows a read of whole days scans are exactly those days'
rows, whatever the history. The controls show the measurement would see
growth: the raw table is 10x as large, a read without a partition filter
(what the previous staging view did every run) reads 10x as many rows, and
the hourly run reads a small, fixed slice of it.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

import dbt_helpers as h
import history

ROWS_PER_DAY = 122_880  # one DuckDB row group
BASE_DAYS = 2
SCHEMA = "analytics"
RAW_TABLE = ".raw.events"


def profiled_scans(con, sql: str, profile_path) -> dict[str, int]:
    """Run `sql` under the profiler; rows scanned per table."""
    con.execute("set enable_profiling = 'json'")
    con.execute(f"set profiling_output = '{profile_path}'")
    con.execute(sql).fetchall()
    con.execute("pragma disable_profiling")
    scans: dict[str, int] = {}

    def walk(node):
        if node.get("type") == "TABLE_SCAN" and "Table" in node.get("extra_info", {}):
            table = node["extra_info"]["Table"]
            scans[table] = scans.get(table, 0) + int(node.get("rows_scanned", 0))
        for child in node.get("children", []):
            walk(child)

    for node in json.loads(profile_path.read_text())["operator"]:
        walk(node)
    return scans


def strip_comments(sql: str) -> str:
    return re.sub(r"/\*.*?\*/", "", sql, flags=re.S).strip()


def reads_of_run(workdir, proc) -> list[tuple[str, str]]:
    """(model, SELECT) for every read of a table the run made: the queries dbt
    issued while compiling each model (from its JSON log: between the node's
    NodeCompiling and NodeExecuting events), and each incremental model's
    compiled SELECT (what its materialization builds the new partitions from;
    the other statements of the materialization read only that result)."""
    reads, compiling = [], set()
    for line in (workdir / "logs" / "dbt.log").read_text().splitlines():
        if not line.startswith("{"):
            continue  # the text log of the earlier runs
        event = json.loads(line)
        if event["info"].get("invocation_id") != proc.invocation_id:
            continue
        node = (event["data"].get("node_info") or {}).get("unique_id", "")
        if event["info"]["name"] == "NodeCompiling":
            compiling.add(node)
        elif event["info"]["name"] == "NodeExecuting":
            compiling.discard(node)
        elif event["info"]["name"] == "SQLQuery" and node in compiling:
            sql = strip_comments(event["data"]["sql"])
            if re.match(r"(?is)^(with|select)\b", sql):
                reads.append((node.split(".")[-1], sql))
    for path in sorted((proc.target_dir / "compiled" / "clickstream" / "models").rglob("*.sql")):
        if path.parent.name.endswith(".yml"):
            continue
        sql = path.read_text()
        if '"mode": "incremental"' in sql:
            reads.append((path.stem, strip_comments(sql)))
    return reads


def measure(workdir, scale: int) -> dict:
    import duckdb

    db_path = workdir / f"warehouse_{scale}x.duckdb"
    env = {"CLICKSTREAM_DUCKDB_PATH": str(db_path), "CLICKSTREAM_DBT_SCHEMA": SCHEMA}

    def dbt(*args):
        return h.run_dbt(workdir, h.DBT_DIR, *args, target="duckdb", extra_env=env)

    days = history.create(db_path, BASE_DAYS * scale, ROWS_PER_DAY)
    with duckdb.connect(str(db_path)) as con:
        [(history_rows,)] = con.execute("select count(*) from raw.events").fetchall()
    # staging, the one model that reads the raw table, built in full over the
    # history; the models after it created empty (their incremental runs read
    # only the partitions of their inputs this run rebuilds)
    dbt("run", "--select", "stg_clickstream__events")
    dbt("run", "--empty", "--select", "config.materialized:incremental", "int_identities__stitched",
        "--exclude", "stg_clickstream__events")

    # the same new loads for both histories: a late file re-loads the newest day, then the next day arrives
    loads = history.History(db_path, ROWS_PER_DAY, create=False)
    newest, next_day = days[-1], days[-1] + dt.timedelta(days=1)
    loaded_rows = loads.load_day(newest, late_events=300) + loads.load_day(next_day)
    loads.close()
    proc = dbt("run", "--selector", "hourly", "--log-format-file", "json")

    con = duckdb.connect(str(db_path))  # dbt's own connection in this process shares the database
    try:
        reads_by_model: dict[str, dict[str, int]] = {}
        for model, sql in reads_of_run(workdir, proc):
            for table, rows in profiled_scans(con, sql, workdir / "profile.json").items():
                per_model = reads_by_model.setdefault(model, {})
                per_model[table] = per_model.get(table, 0) + rows
        unfiltered = profiled_scans(con, "select count(distinct event_id), max(received_at) from raw.events",
                                    workdir / "profile.json")
        [(raw_table_rows,)] = con.execute("select count(*) from raw.events").fetchall()
        rebuilt = sorted(str(d) for (d,) in con.execute(
            f"select partition_date from {SCHEMA}._partition_builds where invocation_id = ? "
            "and model = 'stg_clickstream__events'", [proc.invocation_id]).fetchall())
    finally:
        con.close()
    raw_read = sum(rows for tables in reads_by_model.values() for table, rows in tables.items()
                   if table.endswith(RAW_TABLE))
    staging_read = sum(rows for tables in reads_by_model.values() for table, rows in tables.items()
                       if table.endswith(f".{SCHEMA}.stg_clickstream__events"))
    return {"scale": scale, "days": len(days), "history_rows": history_rows, "raw_table_rows": raw_table_rows,
            "loaded_rows": loaded_rows, "staging_rows_read": staging_read,
            "raw_rows_read": raw_read, "unfiltered_rows_read": sum(unfiltered.values()),
            "reads_by_model": reads_by_model, "staging_rebuilt": rebuilt,
            "expected_rebuilt": [str(newest), str(next_day)]}


@pytest.fixture(scope="module")
def measurements(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dbt_cost")
    return {scale: measure(workdir, scale) for scale in (1, 10)}


def test_raw_rows_read_by_the_hourly_build_do_not_grow_with_history(measurements):
    one, ten = measurements[1], measurements[10]
    for m in (one, ten):
        print(f"\n{m['scale']:>2}x history: {m['days']} days, {m['history_rows']:,} raw rows, then "
              f"{m['loaded_rows']:,} loaded; the hourly build read {m['raw_rows_read']:,} raw rows "
              f"and {m['staging_rows_read']:,} rows of staging "
              f"(a read of raw.events without partition filter: {m['unfiltered_rows_read']:,})")
        for model, tables in sorted(m["reads_by_model"].items()):
            print(f"    {model}: " + ", ".join(f"{t.split('.', 1)[1]} {n:,}" for t, n in sorted(tables.items())))
    # both runs rebuilt the two newly loaded days, and nothing else, in staging
    assert one["staging_rebuilt"] == one["expected_rebuilt"] and ten["staging_rebuilt"] == ten["expected_rebuilt"]
    # the measurement sees history: the history is 10x as long, and a read
    # without a partition filter reads the whole table
    assert ten["history_rows"] == 10 * one["history_rows"] == 10 * BASE_DAYS * ROWS_PER_DAY
    assert ten["unfiltered_rows_read"] == ten["raw_table_rows"] and one["unfiltered_rows_read"] == one["raw_table_rows"]
    # the hourly build reads at least the days it rebuilds ...
    assert one["raw_rows_read"] >= one["loaded_rows"]
    # ... the same raw rows however long the history ...
    assert ten["raw_rows_read"] == one["raw_rows_read"]
    # ... and, at 10x, a small part of the table
    assert ten["raw_rows_read"] < ten["raw_table_rows"] / 3
