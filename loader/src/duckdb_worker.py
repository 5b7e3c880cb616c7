# The embedded warehouse's worker: the loader (Rust) starts it with the project venv's Python
# and speaks one JSON request / one JSON answer per line. It runs on the DuckDB that dbt-duckdb
# uses, so one DuckDB version opens the warehouse file.
#
# The answers go to a private copy of the original stdout; file descriptor 1 itself is pointed
# at stderr, so nothing DuckDB (or a library) prints can corrupt the protocol. The worker asks
# the kernel to kill it when the loader dies (PR_SET_PDEATHSIG), so it never outlives its
# parent holding the database file's lock; a load it was running is then rolled back by
# DuckDB's recovery, leaving the partition as it was.
import ctypes
import json
import os
import signal
import sys
import time

import duckdb

PARTITION_LOADS = "raw._partition_loads"
LOAD_JOBS = "raw._load_jobs"
LOAD_RUNS = "raw._load_runs"
DAY_FILTER = "event_time >= ?::TIMESTAMPTZ AND event_time < ?::TIMESTAMPTZ + INTERVAL 1 DAY"


def die_with_parent(parent):
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class Locked(Exception):
    """The warehouse file stayed locked by another process for the whole wait."""


def connect(path, read_only, wait_seconds):
    """Opens the database, waiting while another process holds its lock: a dbt run, another
    loader, or the worker of a loader killed a moment ago, which the kernel is still tearing
    down. DuckDB reports a held lock only as an IOException naming it."""
    deadline = time.monotonic() + wait_seconds
    logged = False
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise Locked(f"{error} (waited {wait_seconds:g} s; set --duckdb-lock-wait-seconds to wait longer)") from None
            if not logged:
                print(f"clickstream-loader: the warehouse is locked, waiting up to {wait_seconds:g} s: {error}", file=sys.stderr)
                logged = True
            time.sleep(0.1)


def prepare(con, request):
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(request["create_table"])
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {PARTITION_LOADS} (partition_date DATE NOT NULL, file_set VARCHAR NOT NULL, "
        "files VARCHAR NOT NULL, row_count BIGINT NOT NULL, loaded_at TIMESTAMPTZ NOT NULL, job_id VARCHAR NOT NULL, "
        "run_id VARCHAR NOT NULL)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {LOAD_JOBS} (job_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, "
        "partition_date DATE NOT NULL, submitted_at TIMESTAMPTZ NOT NULL)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {LOAD_RUNS} (run_id VARCHAR NOT NULL, started_at TIMESTAMPTZ NOT NULL, "
        "finished_at TIMESTAMPTZ NOT NULL, outcome VARCHAR NOT NULL, partitions_planned BIGINT NOT NULL, "
        "partitions_loaded BIGINT NOT NULL, partitions_deferred BIGINT NOT NULL, jobs_submitted BIGINT NOT NULL, "
        "message VARCHAR NOT NULL)"
    )
    return {}


def table_exists(con, schema, table):
    return con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchall()[0][0] > 0


def state(con, request):
    if con is None or not (table_exists(con, "raw", "_partition_loads") and table_exists(con, "raw", "_load_jobs")):
        return {"partitions": {}, "jobs_last_24h": 0}
    rows = con.execute(
        f"SELECT strftime(partition_date, '%Y-%m-%d'), arg_max(file_set, loaded_at), epoch_us(max(loaded_at)) "
        f"FROM {PARTITION_LOADS} GROUP BY 1"
    ).fetchall()
    jobs = con.execute(f"SELECT count(*) FROM {LOAD_JOBS} WHERE submitted_at > now() - INTERVAL 24 HOUR").fetchall()[0][0]
    return {
        "partitions": {day: {"file_set": file_set, "loaded_at_us": loaded} for day, file_set, loaded in rows},
        "jobs_last_24h": jobs,
    }


def loaded_files(con, request):
    if con is None or not table_exists(con, "raw", "_partition_loads") or not request["days"]:
        return {"files": {}}
    rows = con.execute(
        f"SELECT strftime(partition_date, '%Y-%m-%d'), arg_max(files, loaded_at) FROM {PARTITION_LOADS} "
        "WHERE strftime(partition_date, '%Y-%m-%d') IN (SELECT unnest(?)) GROUP BY 1",
        [request["days"]],
    ).fetchall()
    return {"files": {day: json.loads(files) for day, files in rows}}


def columns_of(con, relation, params=None):
    return {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {relation}", params or []).fetchall()}


def record_job(con, request):
    con.execute(
        f"INSERT INTO {LOAD_JOBS} VALUES (?, ?, ?::DATE, make_timestamptz(?::BIGINT))",
        [request["job_id"], request["run_id"], request["partition_date"], request["submitted_at_us"]],
    )
    return {}


def record_run(con, request):
    run = request["run"]
    con.execute(
        f"INSERT INTO {LOAD_RUNS} VALUES (?, make_timestamptz(?::BIGINT), make_timestamptz(?::BIGINT), ?, ?, ?, ?, ?, ?)",
        [
            run["run_id"], run["started_at_us"], run["finished_at_us"], run["outcome"], run["partitions_planned"],
            run["partitions_loaded"], run["partitions_deferred"], run["jobs_submitted"], run["message"],
        ],
    )
    return {}


def load_partition(con, request):
    files, day = request["files"], request["day"]
    source = "SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false)"
    table = columns_of(con, "raw.events")
    incoming = columns_of(con, source, [files])
    for name, kind in incoming.items():
        if name in table and table[name] != kind:
            raise ValueError(
                f"column {name} is {table[name]} in the warehouse but {kind} in the lake; "
                "only new columns are added automatically — change the column by hand or fix the writer"
            )
    con.execute("BEGIN TRANSACTION")
    try:
        added = []
        for name, kind in incoming.items():
            if name not in table:
                con.execute(f'ALTER TABLE raw.events ADD COLUMN "{name}" {kind}')
                added.append(name)
        con.execute(f"DELETE FROM raw.events WHERE {DAY_FILTER}", [day, day])
        # Without a sort: the day's files are listed hour by hour and each file's row groups are
        # in event_time order, and DuckDB's threads take them in that order (with
        # preserve_insertion_order off, each thread appends what it read to row groups of its
        # own), so every stored row group spans a few hours and zone maps skip other days the
        # way BigQuery prunes partitions. Sorting the day, or keeping the scan's exact order, made the
        # insert take 1.7 times as long on 2 cores.
        con.execute(
            f"INSERT INTO raw.events BY NAME {source} WHERE {DAY_FILTER}",
            [files, day, day],
        )
        rows = con.execute(f"SELECT count(*) FROM raw.events WHERE {DAY_FILTER}", [day, day]).fetchall()[0][0]
        outside = con.execute(f"SELECT count(*) FROM ({source}) WHERE NOT ({DAY_FILTER})", [files, day, day]).fetchall()[0][0]
        con.execute(
            f"INSERT INTO {PARTITION_LOADS} VALUES (?::DATE, ?, ?, ?, now(), ?, ?)",
            [day, request["file_set"], json.dumps(request["lake_paths"]), rows, request["job_id"], request["run_id"]],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {"rows": rows, "added_columns": added, "rows_outside": outside}


def main():
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    die_with_parent(int(sys.argv[2]))
    path, wait_seconds, read_only = sys.argv[1], float(sys.argv[3]), sys.argv[4] == "read-only"
    con, unavailable = None, None
    try:
        if not read_only or os.path.exists(path):
            con = connect(path, read_only, wait_seconds)
    except Locked as error:
        unavailable = str(error)
    if con is not None:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET TimeZone = 'UTC'")
        # Inserts need not keep the scan's exact row order (see load_partition): letting threads
        # append independently is what makes a day's insert parallel.
        con.execute("SET preserve_insertion_order = false")
    handlers = {
        "prepare": prepare, "state": state, "loaded_files": loaded_files, "record_job": record_job,
        "record_run": record_run, "load_partition": load_partition,
    }
    for line in sys.stdin:
        request = json.loads(line)
        if unavailable is not None:
            protocol.write(json.dumps({"error": unavailable, "retryable": True}) + "\n")
            protocol.flush()
            continue
        try:
            if con is None and request["op"] not in ("state", "loaded_files"):
                raise RuntimeError("the warehouse file does not exist (read-only worker)")
            answer = handlers[request["op"]](con, request)
        except Exception as error:  # every failure goes back to the loader, named
            answer = {"error": f"{type(error).__name__}: {error}"}
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()
    if con is not None:
        con.close()


if __name__ == "__main__":
    main()
