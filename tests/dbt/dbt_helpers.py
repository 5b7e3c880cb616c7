"""Helpers shared by the dbt tests: run dbt, write profiles, load the fixture."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import fixture

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_DIR = REPO_ROOT / "dbt"


@dataclass
class DbtRun:
    """What a dbt invocation left: its messages (what the CLI prints), exit
    status, target directory and invocation id."""

    args: tuple
    returncode: int
    stdout: str
    target_dir: Path
    invocation_id: str | None


@contextlib.contextmanager
def environment(values: dict):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_dbt(workdir: Path, profiles_dir: Path, *args: str, target: str, expect_ok: bool = True,
            extra_env: dict | None = None, dbt_vars: dict | None = None,
            target_path: str = "target") -> DbtRun:
    """Run dbt on the repo's dbt/ project; target/ and logs/ go to workdir, not the repo.

    dbt runs inside this process (dbtRunner), as dbt's own programmatic
    interface: the tests run some twenty short invocations, and starting a
    new interpreter for each would cost more than many of them take. The
    messages the CLI would print are collected through a callback."""
    from dbt.cli.main import dbtRunner

    messages: list[str] = []

    def collect(event):
        if event.info.level in ("info", "warn", "error") and event.info.msg:
            messages.append(str(event.info.msg))

    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false", "DBT_VERSION_CHECK": "false",
           "DO_NOT_TRACK": "1", **(extra_env or {})}
    cli_args = [*args, "--target", target, "--project-dir", str(DBT_DIR), "--profiles-dir", str(profiles_dir),
                "--target-path", str(workdir / target_path), "--log-path", str(workdir / "logs"),
                "--vars", json.dumps({"run_date": fixture.RUN_DATE, **(dbt_vars or {})}), "--quiet"]
    started, started_wall = time.monotonic(), time.time()
    with environment(env), contextlib.chdir(workdir):
        result = dbtRunner(callbacks=[collect]).invoke(cli_args)
    if result.exception is not None:
        messages.append(f"{type(result.exception).__name__}: {result.exception}")
    run = DbtRun(args=args, returncode=0 if result.success else 1, stdout="\n".join(messages),
                 target_dir=workdir / target_path, invocation_id=None)
    print(f"$ dbt {' '.join(args)} --target {target}  ({time.monotonic() - started:.1f}s, rc={run.returncode})")
    if expect_ok and run.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed\n--- output ---\n{run.stdout[-20000:]}")
    results = run.target_dir / "run_results.json"
    if results.exists() and results.stat().st_mtime >= started_wall:
        run.invocation_id = json.loads(results.read_text())["metadata"]["invocation_id"]
    return run


def invocation_id(workdir: Path, run: DbtRun) -> str:
    assert run.invocation_id, f"no run_results.json in {run.target_dir}"
    return run.invocation_id


PARTITION_LOADS_COLUMNS = [
    # (name, BigQuery type, DuckDB type, required): the loader's change record
    ("partition_date", "DATE", "DATE", True),
    ("file_set", "STRING", "VARCHAR", False),
    ("files", "STRING", "VARCHAR", False),
    ("row_count", "INT64", "BIGINT", False),
    ("loaded_at", "TIMESTAMP", "TIMESTAMPTZ", False),
    ("job_id", "STRING", "VARCHAR", False),
    ("run_id", "STRING", "VARCHAR", False),
]


def duckdb_create_sql(schema: str = "raw", table: str = "events") -> str:
    def columns(spec):
        return ",\n  ".join(f"{name} {ddb}{' NOT NULL' if required else ''}" for name, _bq, ddb, required in spec)

    return (f"CREATE SCHEMA IF NOT EXISTS {schema};\n"
            f"CREATE TABLE {schema}.{table} (\n  {columns(fixture.COLUMNS)}\n);\n"
            f"CREATE TABLE {schema}._partition_loads (\n  {columns(PARTITION_LOADS_COLUMNS)}\n);")


def event_day(row: dict) -> str:
    return str(row["event_time"])[:10]


class RawPartitions:
    """The raw table as the loader keeps it: whole UTC days of event_time.

    The loader re-loads a day as a whole when a (late) file for it arrives:
    it replaces the day's rows and then appends one row to _partition_loads.
    This keeps every row loaded so far, so a load of new rows re-writes each
    day they touch with all of that day's rows.
    """

    def __init__(self):
        self.rows_by_day: dict[str, list[dict]] = {}
        self.loads = 0

    def add(self, rows: list[dict]) -> dict[str, list[dict]]:
        """Add rows; returns {day: every row of that day} for the days they touch."""
        touched = sorted({event_day(r) for r in rows})
        for row in rows:
            self.rows_by_day.setdefault(event_day(row), []).append(row)
        return {day: sorted(self.rows_by_day[day], key=lambda r: str(r["event_time"])) for day in touched}

    def all_rows(self) -> list[dict]:
        return [row for day in sorted(self.rows_by_day) for row in self.rows_by_day[day]]

    def load_record(self, day: str, rows: list[dict]) -> dict:
        self.loads += 1
        files = [f"lake/events/dt={day}/hour={h:02d}/part-{self.loads:04d}.parquet"
                 for h in sorted({int(str(r["event_time"])[11:13]) for r in rows})]
        return {
            "partition_date": day,
            "file_set": hashlib.sha256("\n".join(files).encode()).hexdigest(),
            "files": json.dumps(files),
            "row_count": len(rows),
            "job_id": f"load-{self.loads:04d}",
            "run_id": f"run-{self.loads:04d}",
        }


def load_duckdb(path: Path, raw: RawPartitions, rows: list[dict], create: bool = False) -> list[str]:
    """Load rows as the loader does: per touched day, in one transaction, delete
    the day, insert its rows in event_time order, record the load. Returns the days."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        if create:
            con.execute(duckdb_create_sql())
        placeholders = ", ".join("?" for _ in fixture.COLUMN_NAMES)
        days = raw.add(rows)
        for day, day_rows in days.items():
            record = raw.load_record(day, day_rows)
            con.execute("BEGIN TRANSACTION")
            con.execute("DELETE FROM raw.events WHERE event_time >= CAST(? AS TIMESTAMP) "
                        "AND event_time < CAST(? AS TIMESTAMP) + INTERVAL 1 DAY", [day, day])
            con.executemany(
                f"INSERT INTO raw.events ({', '.join(fixture.COLUMN_NAMES)}) VALUES ({placeholders})",
                [[row[c] for c in fixture.COLUMN_NAMES] for row in day_rows],
            )
            con.execute(
                "INSERT INTO raw._partition_loads (partition_date, file_set, files, row_count, loaded_at, job_id, run_id) "
                "VALUES (CAST(? AS DATE), ?, ?, ?, now(), ?, ?)",
                [record["partition_date"], record["file_set"], record["files"], record["row_count"],
                 record["job_id"], record["run_id"]],
            )
            con.execute("COMMIT")
        return list(days)
    finally:
        con.close()


def bigquery_schema(columns=None) -> list[dict]:
    return [
        {"name": name, "type": bq, "mode": "REQUIRED" if required else "NULLABLE"}
        for name, bq, _ddb, required in (columns or fixture.COLUMNS)
    ]
