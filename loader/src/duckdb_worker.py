# The embedded warehouse's worker: the loader (Rust) starts it with the project venv's Python
# and speaks one JSON request / one JSON answer per line on stdin/stdout. It runs on the DuckDB
# that dbt-duckdb uses, so one DuckDB version opens the warehouse file.
import json
import sys

import duckdb

STATE_TABLE = "raw._load_state"


def prepare(con, request):
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(request["create_table"])
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (hour TIMESTAMPTZ PRIMARY KEY, file_set VARCHAR NOT NULL, "
        "files VARCHAR NOT NULL, row_count BIGINT NOT NULL, loaded_at TIMESTAMPTZ NOT NULL)"
    )
    return {}


def state(con, request):
    rows = con.execute(f"SELECT strftime(hour AT TIME ZONE 'UTC', '%Y-%m-%dT%H:00:00Z'), file_set FROM {STATE_TABLE}").fetchall()
    return {"hours": {hour: file_set for hour, file_set in rows}}


def columns_of(con, relation, params=None):
    return {name: kind for name, kind, *_ in con.execute(f"DESCRIBE {relation}", params or []).fetchall()}


def load_hour(con, request):
    files, start, end = request["files"], request["start"], request["end"]
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
        con.execute("DELETE FROM raw.events WHERE event_time >= ?::TIMESTAMPTZ AND event_time < ?::TIMESTAMPTZ", [start, end])
        con.execute(
            f"INSERT INTO raw.events BY NAME {source} WHERE event_time >= ?::TIMESTAMPTZ AND event_time < ?::TIMESTAMPTZ",
            [files, start, end],
        )
        rows = con.execute(
            "SELECT count(*) FROM raw.events WHERE event_time >= ?::TIMESTAMPTZ AND event_time < ?::TIMESTAMPTZ", [start, end]
        ).fetchall()[0][0]
        outside = con.execute(
            f"SELECT count(*) FROM ({source}) WHERE NOT (event_time >= ?::TIMESTAMPTZ AND event_time < ?::TIMESTAMPTZ)",
            [files, start, end],
        ).fetchall()[0][0]
        con.execute(
            f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?::TIMESTAMPTZ, ?, ?, ?, now())",
            [start, request["file_set"], json.dumps(files), rows],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return {"rows": rows, "added_columns": added, "rows_outside_hour": outside}


def main():
    con = duckdb.connect(sys.argv[1])
    handlers = {"prepare": prepare, "state": state, "load_hour": load_hour}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = handlers[request["op"]](con, request)
        except Exception as error:  # every failure goes back to the loader, named
            answer = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    con.close()


if __name__ == "__main__":
    main()
