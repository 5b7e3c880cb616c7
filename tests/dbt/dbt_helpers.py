"""Helpers shared by the dbt tests: run dbt, write profiles, load the fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import fixture

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_DIR = REPO_ROOT / "dbt"
DBT_BIN = Path(sys.executable).parent / "dbt"

# Bound every dbt invocation so a hung connection fails the test instead of CI.
DBT_TIMEOUT_SECONDS = int(os.environ.get("CLICKSTREAM_DBT_TEST_TIMEOUT", "600"))


def run_dbt(workdir: Path, profiles_dir: Path, *args: str, target: str, expect_ok: bool = True,
            extra_env: dict | None = None, dbt_vars: dict | None = None) -> subprocess.CompletedProcess:
    """Run dbt on the repo's dbt/ project; target/ and logs/ go to workdir, not the repo."""
    env = dict(os.environ)
    env.update(
        DBT_PROFILES_DIR=str(profiles_dir),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_USE_COLORS="false",
        DBT_VERSION_CHECK="false",
        DO_NOT_TRACK="1",
    )
    env.update(extra_env or {})
    cmd = [str(DBT_BIN), *args, "--target", target, "--project-dir", str(DBT_DIR),
           "--target-path", str(workdir / "target"), "--log-path", str(workdir / "logs"),
           "--vars", json.dumps({"run_date": fixture.RUN_DATE, **(dbt_vars or {})})]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=DBT_TIMEOUT_SECONDS)
    elapsed = time.monotonic() - started
    print(f"$ dbt {' '.join(args)} --target {target}  ({elapsed:.1f}s, rc={proc.returncode})")
    if expect_ok and proc.returncode != 0:
        raise AssertionError(
            f"dbt {' '.join(args)} failed (rc={proc.returncode})\n--- stdout ---\n{proc.stdout[-20000:]}\n"
            f"--- stderr ---\n{proc.stderr[-5000:]}"
        )
    return proc


def duckdb_create_sql(schema: str = "raw", table: str = "events") -> str:
    cols = ",\n  ".join(
        f"{name} {ddb}{' NOT NULL' if required else ''}" for name, _bq, ddb, required in fixture.COLUMNS
    )
    return f"CREATE SCHEMA IF NOT EXISTS {schema};\nCREATE TABLE {schema}.{table} (\n  {cols}\n);"


def load_duckdb(path: Path, rows: list[dict], create: bool) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        if create:
            con.execute(duckdb_create_sql())
        placeholders = ", ".join("?" for _ in fixture.COLUMN_NAMES)
        con.executemany(
            f"INSERT INTO raw.events ({', '.join(fixture.COLUMN_NAMES)}) VALUES ({placeholders})",
            [[row[c] for c in fixture.COLUMN_NAMES] for row in rows],
        )
    finally:
        con.close()


def bigquery_schema() -> list[dict]:
    return [
        {"name": name, "type": bq, "mode": "REQUIRED" if required else "NULLABLE"}
        for name, bq, _ddb, required in fixture.COLUMNS
    ]
