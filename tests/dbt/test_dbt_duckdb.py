"""dbt build on DuckDB against the hand-written fixture, then exact mart values.

Flow: load the fixture (without the late event) into a temp DuckDB file,
`dbt build` (first run: full build), load the late event, `dbt build` again
(incremental run over the late-data window), then compare every mart with
the hand-computed expectations. Uses the repo's dbt/profiles.yml (target
duckdb) with CLICKSTREAM_DUCKDB_PATH pointing at the temp file.
"""

from __future__ import annotations

import pytest

import dbt_helpers as h
import fixture
from marts_check import MARTS, check_mart

SCHEMA = "analytics_test"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dbt_duckdb")
    db_path = workdir / "warehouse.duckdb"
    env = {"CLICKSTREAM_DUCKDB_PATH": str(db_path), "CLICKSTREAM_DBT_SCHEMA": SCHEMA}

    h.load_duckdb(db_path, fixture.EVENTS, create=True)
    first = h.run_dbt(workdir, h.DBT_DIR, "build", target="duckdb", extra_env=env)
    h.load_duckdb(db_path, fixture.LATE_EVENTS, create=False)
    second = h.run_dbt(workdir, h.DBT_DIR, "build", target="duckdb", extra_env=env)
    return {"workdir": workdir, "db_path": db_path, "env": env, "first": first, "second": second}


def fetch(db_path):
    import duckdb

    def fetch_rows(model, columns):
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            cur = con.execute(f"select {', '.join(columns)} from {SCHEMA}.{model}")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            con.close()

    return fetch_rows


def test_build_runs_models_tests_and_unit_tests(warehouse):
    out = warehouse["second"].stdout
    assert "ERROR=0" in out and "FAIL" not in out.replace("FAIL=0", "")
    # the second run took the incremental path
    assert "incremental model" in out
    for unit_test in ("stg_clickstream__events_keeps_the_earliest_received_copy",
                      "int_events__sessionized_sessions_and_stitching",
                      "int_identities__stitched_login_and_shared_device",
                      "fct_funnel_daily_funnel_maths"):
        assert unit_test in out


@pytest.mark.parametrize("model", MARTS)
def test_mart_matches_hand_computed_values(warehouse, model):
    check_mart(model, fetch(warehouse["db_path"]))


def test_narrow_window_run_rebuilds_only_its_days(warehouse):
    # Window of one day (2024-03-11): the days before keep their rows, and the
    # session that started on 2024-03-10 and ran past midnight keeps its id
    # thanks to the session lookback day.
    h.run_dbt(warehouse["workdir"], h.DBT_DIR, "build", "--exclude-resource-type", "unit_test",
              target="duckdb", extra_env=warehouse["env"],
              dbt_vars={"run_date": "2024-03-11", "late_data_lookback_days": 0})
    for model in ("fct_sessions", "fct_orders", "fct_traffic_daily", "fct_funnel_daily", "dim_users"):
        check_mart(model, fetch(warehouse["db_path"]))


def test_full_refresh_rebuild_gives_the_same_marts(warehouse):
    h.run_dbt(warehouse["workdir"], h.DBT_DIR, "run", "--full-refresh", target="duckdb", extra_env=warehouse["env"])
    for model in ("fct_sessions", "fct_funnel_daily", "fct_data_quality_daily"):
        check_mart(model, fetch(warehouse["db_path"]))


def test_docs_generate_and_every_model_and_column_is_described(warehouse):
    import json

    h.run_dbt(warehouse["workdir"], h.DBT_DIR, "docs", "generate", target="duckdb", extra_env=warehouse["env"])
    target = warehouse["workdir"] / "target"
    assert (target / "index.html").exists()
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    undocumented = []
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] != "model":
            continue
        if not node["description"].strip():
            undocumented.append(unique_id)
        described = {name.lower() for name, col in node["columns"].items() if col["description"].strip()}
        for column in catalog["nodes"][unique_id]["columns"]:
            if column.lower() not in described:
                undocumented.append(f"{unique_id}.{column}")
    assert not undocumented, undocumented


def test_source_freshness_flags_the_stale_fixture(warehouse):
    # The fixture's newest received_at is 2024-03-12: far past error_after (12 h).
    proc = h.run_dbt(warehouse["workdir"], h.DBT_DIR, "source", "freshness", target="duckdb",
                     extra_env=warehouse["env"], expect_ok=False)
    assert proc.returncode == 1, proc.stdout
    assert "ERROR STALE" in proc.stdout, proc.stdout
