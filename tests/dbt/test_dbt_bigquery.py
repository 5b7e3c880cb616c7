"""dbt build in the BigQuery dialect against the bqemulator BigQuery emulator.

Starts the emulator offline on free loopback ports, creates the raw table as
the loader does (HOUR partitions on event_time, clustered), loads the fixture
through the REST API (load jobs by file upload), runs `dbt build --target
bigquery` twice (full, then incremental after the late event arrives) and
compares every mart with the same hand-computed expectations as the DuckDB
test. The emulator is stopped at the end of the module.
"""

from __future__ import annotations

import io
import json

import pytest

import dbt_helpers as h
import fixture
from bq_emulator import PROJECT, Emulator
from marts_check import MARTS, check_mart

RAW_DATASET = "clickstream_raw"
DATASET = "analytics_test"


def write_profile(directory, endpoint):
    (directory / "profiles.yml").write_text(f"""\
clickstream:
  target: bigquery
  outputs:
    bigquery:
      type: bigquery
      method: oauth-secrets
      token: dummy
      project: {PROJECT}
      dataset: {DATASET}
      api_endpoint: {endpoint}
      location: US
      threads: 2
      priority: interactive
      job_retries: 0
      job_execution_timeout_seconds: 120
""")


def load_rows(client, rows):
    """Append rows to the raw table with a load job (NDJSON file upload)."""
    from google.cloud import bigquery

    schema = [bigquery.SchemaField(c["name"], c["type"], mode=c["mode"]) for c in h.bigquery_schema()]
    job = client.load_table_from_file(
        io.BytesIO("\n".join(json.dumps(r) for r in rows).encode()),
        f"{PROJECT}.{RAW_DATASET}.events",
        job_config=bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema,
                                          write_disposition="WRITE_APPEND"),
        timeout=60,
    )
    job.result(timeout=60)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    from google.cloud import bigquery

    workdir = tmp_path_factory.mktemp("dbt_bigquery")
    emulator = Emulator(workdir)
    emulator.start()
    try:
        client = emulator.client()
        client.create_dataset(RAW_DATASET, timeout=30)
        table = bigquery.Table(
            f"{PROJECT}.{RAW_DATASET}.events",
            schema=[bigquery.SchemaField(c["name"], c["type"], mode=c["mode"]) for c in h.bigquery_schema()],
        )
        table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.HOUR,
                                                            field="event_time")
        table.clustering_fields = ["event_type", "source_id"]
        client.create_table(table, timeout=30)
        load_rows(client, fixture.EVENTS)

        write_profile(workdir, emulator.endpoint)
        first = h.run_dbt(workdir, workdir, "build", target="bigquery")
        load_rows(client, fixture.LATE_EVENTS)
        # unit tests ran in the first build; the second one is about the incremental path
        second = h.run_dbt(workdir, workdir, "build", "--exclude-resource-type", "unit_test", target="bigquery")
        yield {"workdir": workdir, "client": client, "first": first, "second": second}
    finally:
        emulator.stop()


def fetch(client):
    def fetch_rows(model, columns):
        sql = f"select {', '.join(columns)} from `{PROJECT}.{DATASET}.{model}`"
        return [dict(row.items()) for row in client.query(sql).result(timeout=60)]

    return fetch_rows


def test_raw_table_is_partitioned_like_the_loader_makes_it(warehouse):
    table = warehouse["client"].get_table(f"{PROJECT}.{RAW_DATASET}.events")
    assert table.time_partitioning.type_ == "HOUR" and table.time_partitioning.field == "event_time"


def test_build_runs_models_tests_and_unit_tests(warehouse):
    out = warehouse["second"].stdout
    assert "ERROR=0" in out
    assert "incremental model" in out
    assert "fct_funnel_daily_funnel_maths" in warehouse["first"].stdout


def test_incremental_models_are_partitioned_and_clustered(warehouse):
    client = warehouse["client"]
    events = client.get_table(f"{PROJECT}.{DATASET}.int_events__sessionized")
    assert events.time_partitioning.field == "event_date"
    sessions = client.get_table(f"{PROJECT}.{DATASET}.fct_sessions")
    assert sessions.time_partitioning.field == "session_date"
    # the emulator does not report clustering back, so read the DDL dbt sent
    log = (warehouse["workdir"] / "logs" / "dbt.log").read_text()
    assert "cluster by event_type, session_id" in log
    assert "cluster by channel, device_class" in log
    # the incremental run replaced exactly the window's day partitions (static insert_overwrite)
    compiled = (warehouse["workdir"] / "target" / "run" / "clickstream" / "models" / "intermediate"
                / "int_events__sessionized.sql").read_text().lower()
    assert "when not matched by source" in compiled
    for day in ("2024-03-09", "2024-03-10", "2024-03-11", "2024-03-12"):
        assert f"date('{day}')" in compiled


@pytest.mark.parametrize("model", MARTS)
def test_mart_matches_hand_computed_values(warehouse, model):
    check_mart(model, fetch(warehouse["client"]))


def test_narrow_window_run_replaces_only_its_partitions(warehouse):
    # One-day window (2024-03-11): the MERGE deletes and re-inserts only that
    # partition; 2024-03-10 stays, and the session that crossed midnight keeps
    # its id (session lookback day).
    h.run_dbt(warehouse["workdir"], warehouse["workdir"], "run", "--select", "int_events__sessionized", "fct_sessions",
              target="bigquery", dbt_vars={"run_date": "2024-03-11", "late_data_lookback_days": 0})
    compiled = (warehouse["workdir"] / "target" / "run" / "clickstream" / "models" / "intermediate"
                / "int_events__sessionized.sql").read_text()
    assert "date('2024-03-11')" in compiled and "date('2024-03-10')" not in compiled
    check_mart("fct_sessions", fetch(warehouse["client"]))
    rows = warehouse["client"].query(
        f"select event_date, count(*) as n from `{PROJECT}.{DATASET}.int_events__sessionized` group by event_date"
    ).result(timeout=60)
    assert {str(r["event_date"]): r["n"] for r in rows} == {"2024-03-10": 16, "2024-03-11": 9}


def test_docs_generate_without_catalog(warehouse):
    # The emulator has no legacy `<dataset>.__TABLES__` meta-table, which
    # dbt-bigquery's catalog query reads, so the catalog step is skipped here
    # (--empty-catalog); the DuckDB test generates the full docs with catalog.
    h.run_dbt(warehouse["workdir"], warehouse["workdir"], "docs", "generate", "--empty-catalog", target="bigquery")
    manifest = json.loads((warehouse["workdir"] / "target" / "manifest.json").read_text())
    sessions = manifest["nodes"]["model.clickstream.fct_sessions"]
    assert sessions["description"] and all(c["description"] for c in sessions["columns"].values())
    assert (warehouse["workdir"] / "target" / "index.html").exists()
