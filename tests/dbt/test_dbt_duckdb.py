"""dbt on DuckDB against the hand-written fixture: exact mart values, late data, re-stitching.

Flow (one warehouse file, the stages build on each other, in file order):
  1. load the fixture (without the late event) the way the loader does,
     `dbt build` (first run: full build, unit tests);
  2. load the late purchase, `dbt build --selector hourly`: the hourly marts
     equal the hand-computed expectations; then `--selector nightly`: every
     mart does;
  3. load today's traffic and two rows for a day eleven days older (an event
     inside a session that crosses midnight, a retry whose copy falls on the
     other side of midnight), `--selector hourly`: every hourly model equals
     the same model rebuilt with --full-refresh from the same raw data (in a
     second schema), and the partition log shows which days were rebuilt;
  4. load a late login of a device last seen eleven days earlier,
     `--selector nightly`: the re-stitched identity map re-attributes the
     device's old days, and every model equals a full rebuild again.
Uses the repo's dbt/profiles.yml (target duckdb) with CLICKSTREAM_DUCKDB_PATH
pointing at the temp file.
"""

from __future__ import annotations

import json

import pytest

import dbt_helpers as h
import fixture
from marts_check import ALL_MODELS, HOURLY_MARTS, HOURLY_MODELS, MARTS, check_mart, table_differences

SCHEMA = "analytics_test"
REFERENCE_SCHEMA = "analytics_reference"


def query(db_path, sql, params=None):
    import duckdb

    con = duckdb.connect(str(db_path))  # dbt runs in this process and shares the database
    try:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


def fetch(db_path, schema=SCHEMA):
    def fetch_rows(model, columns):
        return query(db_path, f"select {', '.join(columns)} from {schema}.{model}")

    return fetch_rows


def rebuilt_days(state, proc) -> dict[str, list[str]]:
    """model -> the day partitions it rebuilt in the dbt invocation `proc` (from the partition log)."""
    invocation = h.invocation_id(state["workdir"], proc)
    rows = query(state["db_path"], f"select model, partition_date from {SCHEMA}._partition_builds "
                                   "where invocation_id = ? and partition_date is not null", [invocation])
    days: dict[str, list[str]] = {}
    for row in rows:
        days.setdefault(row["model"], []).append(row["partition_date"].isoformat())
    return {model: sorted(d) for model, d in days.items()}


def differences_from_full_rebuild(state, models) -> list[str]:
    """Rebuild `models` (and what they read) with --full-refresh into REFERENCE_SCHEMA and diff each."""
    env = dict(state["env"], CLICKSTREAM_DBT_SCHEMA=REFERENCE_SCHEMA)
    h.run_dbt(state["workdir"], h.DBT_DIR, "run", "--full-refresh", "--select", *[f"+{m}" for m in models],
              target="duckdb", extra_env=env, target_path="target_reference")
    problems = []
    for model in models:
        problems += table_differences(model, query(state["db_path"], f"select * from {SCHEMA}.{model}"),
                                      query(state["db_path"], f"select * from {REFERENCE_SCHEMA}.{model}"))
    return problems


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dbt_duckdb")
    db_path = workdir / "warehouse.duckdb"
    env = {"CLICKSTREAM_DUCKDB_PATH": str(db_path), "CLICKSTREAM_DBT_SCHEMA": SCHEMA}

    raw = h.RawPartitions()
    h.load_duckdb(db_path, raw, fixture.EVENTS, create=True)
    first = h.run_dbt(workdir, h.DBT_DIR, "build", target="duckdb", extra_env=env)
    h.load_duckdb(db_path, raw, fixture.LATE_EVENTS)
    hourly = h.run_dbt(workdir, h.DBT_DIR, "build", "--selector", "hourly", target="duckdb", extra_env=env)
    return {"workdir": workdir, "db_path": db_path, "env": env, "raw": raw, "first": first, "hourly": hourly}


@pytest.fixture(scope="module")
def after_nightly(warehouse):
    nightly = h.run_dbt(warehouse["workdir"], h.DBT_DIR, "build", "--selector", "nightly", target="duckdb",
                        extra_env=warehouse["env"])
    return dict(warehouse, nightly=nightly)


@pytest.fixture(scope="module")
def far_late_data(after_nightly):
    state = after_nightly
    days = h.load_duckdb(state["db_path"], state["raw"], fixture.FAR_LATE_EVENTS)
    hourly = h.run_dbt(state["workdir"], h.DBT_DIR, "build", "--selector", "hourly", target="duckdb",
                       extra_env=state["env"])
    return dict(state, loaded_days=days, far_late_hourly=hourly, rebuilt=rebuilt_days(state, hourly),
                differences=differences_from_full_rebuild(state, HOURLY_MODELS))


@pytest.fixture(scope="module")
def late_login(far_late_data):
    state = far_late_data
    h.load_duckdb(state["db_path"], state["raw"], fixture.LATE_LOGIN_EVENTS)
    nightly = h.run_dbt(state["workdir"], h.DBT_DIR, "build", "--selector", "nightly", target="duckdb",
                        extra_env=state["env"])
    return dict(state, nightly_rebuilt=rebuilt_days(state, nightly),
                differences=differences_from_full_rebuild(state, ALL_MODELS))


# --- 1. full build ---------------------------------------------------------------

def test_first_build_runs_models_tests_and_unit_tests(warehouse):
    out = warehouse["first"].stdout
    assert "ERROR=0" in out and "Completed successfully" in out
    for unit_test in ("stg_clickstream__events_keeps_the_earliest_received_copy",
                      "int_events__sessionized_sessions_and_stitching",
                      "int_identities__stitched_login_and_shared_device",
                      "fct_funnel_daily_funnel_maths"):
        assert unit_test in out


# --- 2. the late purchase: hourly, then nightly -------------------------------------

def test_hourly_build_is_incremental_and_leaves_the_nightly_models_alone(warehouse):
    out = warehouse["hourly"].stdout
    assert "ERROR=0" in out and "Completed successfully" in out
    assert "Finished running 9 incremental models" in out
    for nightly_only in ("int_identities__stitched", "dim_users", "fct_product_performance", "unit_test"):
        assert nightly_only not in out


@pytest.mark.parametrize("model", HOURLY_MARTS + ["int_identities__stitched"])
def test_hourly_mart_matches_hand_computed_values(warehouse, model):
    check_mart(model, fetch(warehouse["db_path"]))


def test_hourly_build_rebuilt_the_late_purchases_day_and_its_neighbours(warehouse):
    rebuilt = rebuilt_days(warehouse, warehouse["hourly"])
    # d04 re-loaded 2024-03-11; sessions reach one day either side
    assert rebuilt["stg_clickstream__events"] == ["2024-03-11"]
    assert rebuilt["fct_data_quality_daily"] == ["2024-03-11"]
    for model in ("int_events__sessionized", "fct_sessions", "fct_orders", "fct_traffic_daily", "fct_funnel_daily"):
        assert rebuilt[model] == ["2024-03-10", "2024-03-11", "2024-03-12"], model


def test_nightly_build_runs_every_model_and_test(after_nightly):
    out = after_nightly["nightly"].stdout
    assert "ERROR=0" in out and "Completed successfully" in out
    assert "9 incremental models" in out and "7 table models" in out
    assert "unique_stg_clickstream__events_event_id" in out and "assert_every_raw_row_is_accounted_for" in out


@pytest.mark.parametrize("model", MARTS)
def test_mart_matches_hand_computed_values_after_nightly(after_nightly, model):
    check_mart(model, fetch(after_nightly["db_path"]))


def test_nightly_run_after_the_hourly_one_rebuilds_no_partition(after_nightly):
    # nothing was loaded since the hourly run and the re-stitched map attributes
    # no event differently: every incremental model had nothing to do
    assert rebuilt_days(after_nightly, after_nightly["nightly"]) == {}


# --- 3. late data far outside any window -----------------------------------------------

def test_far_late_rows_are_recorded_as_the_loader_records_them(far_late_data):
    assert far_late_data["loaded_days"] == ["2024-03-10", "2024-03-21"]
    loads = query(far_late_data["db_path"], "select partition_date, row_count, files from raw._partition_loads "
                                            "order by loaded_at desc limit 2")
    assert {(r["partition_date"].isoformat(), r["row_count"]) for r in loads} == {("2024-03-10", 22),
                                                                                 ("2024-03-21", 3)}
    assert all(json.loads(r["files"]) for r in loads)


def test_hourly_build_rebuilt_exactly_the_changed_days_and_their_neighbours(far_late_data):
    rebuilt = far_late_data["rebuilt"]
    # 2024-03-10 and 2024-03-21 were re-loaded; 2024-03-11 holds the kept copy of
    # g02, whose copy count changed (the dedupe neighbour check found it)
    assert rebuilt["stg_clickstream__events"] == ["2024-03-10", "2024-03-11", "2024-03-21"]
    assert rebuilt["int_events__sessionized"] == ["2024-03-09", "2024-03-10", "2024-03-11", "2024-03-12",
                                                  "2024-03-20", "2024-03-21", "2024-03-22"]
    assert rebuilt["fct_sessions"] == rebuilt["int_events__sessionized"]


def test_far_late_data_is_in_the_hourly_marts(far_late_data):
    db = far_late_data["db_path"]
    [crossing] = query(db, f"select events, product_views, session_end_at from {SCHEMA}.fct_sessions "
                           "where session_id = 'a6-1710114600'")
    assert (crossing["events"], crossing["product_views"]) == (4, 3)
    quality = {r["event_date"].isoformat(): r for r in query(db, f"select * from {SCHEMA}.fct_data_quality_daily")}
    # raw rows count on the day of the copy kept: g02's retry on 2024-03-11, g00 on 2024-03-10
    assert (quality["2024-03-11"]["raw_rows"], quality["2024-03-11"]["duplicate_rows"]) == (11, 1)
    assert (quality["2024-03-10"]["raw_rows"], quality["2024-03-10"]["modelled_events"]) == (21, 17)
    [copies] = query(db, f"select copies_received, event_date from {SCHEMA}.stg_clickstream__events "
                         "where event_id = 'g02'")
    assert (copies["copies_received"], copies["event_date"].isoformat()) == (2, "2024-03-11")


def test_hourly_models_equal_a_full_rebuild_after_far_late_data(far_late_data):
    assert not far_late_data["differences"], "\n".join(far_late_data["differences"])


# --- 4. a late login: the nightly run re-attributes old days ----------------------------

def test_nightly_run_re_attributes_the_late_logins_old_days(late_login):
    # only 2024-03-21 was loaded, yet the nightly run rebuilt 2024-03-10 too:
    # the re-stitched map attributes a2's events of that day to u7
    assert late_login["nightly_rebuilt"]["stg_clickstream__events"] == ["2024-03-21"]
    assert "2024-03-10" in late_login["nightly_rebuilt"]["int_events__sessionized"]
    sessions = query(late_login["db_path"], f"select visitor_id from {SCHEMA}.fct_sessions where device_key = 'a2'")
    assert [r["visitor_id"] for r in sessions] == ["u7"] * 3


def test_every_model_equals_a_full_rebuild_after_the_nightly_run(late_login):
    assert not late_login["differences"], "\n".join(late_login["differences"])


# --- docs and freshness ------------------------------------------------------------------

def test_docs_generate_and_every_model_and_column_is_described(late_login):
    h.run_dbt(late_login["workdir"], h.DBT_DIR, "docs", "generate", target="duckdb", extra_env=late_login["env"])
    target = late_login["workdir"] / "target"
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


def test_source_freshness_flags_the_stale_fixture(late_login):
    # The fixture's newest received_at is 2024-03-21: far past error_after (12 h).
    proc = h.run_dbt(late_login["workdir"], h.DBT_DIR, "source", "freshness", "--select", "source:clickstream.events",
                     target="duckdb", extra_env=late_login["env"], expect_ok=False)
    assert proc.returncode == 1, proc.stdout
    assert "ERROR STALE" in proc.stdout, proc.stdout
