"""dbt in the BigQuery dialect against the bqemulator BigQuery emulator.

Starts the emulator offline on free loopback ports and creates the loader's
tables as the loader does: events DAY-partitioned on event_time and
clustered, and the _partition_loads change record. Loads go day by day
(delete the day, a load job of all its rows, a _partition_loads row). Flow:
  1. the fixture without the late purchase, `dbt build` of the models the
     hourly runs need (full builds) and the unit tests;
  2. the late purchase, `dbt build --selector nightly` (the incremental
     models take it, the tables are rebuilt, every data test runs): every
     mart equals the hand-computed expectations of the DuckDB test;
  3. today's traffic and two rows eleven days older, `dbt build --selector
     hourly`: every hourly model equals the same model rebuilt with
     --full-refresh from the same raw data (a second dataset), and the
     compiled SQL of every incremental model reads its inputs through their
     partition columns.
The emulator is stopped at the end of the module.
"""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest

import dbt_helpers as h
import fixture
from bq_emulator import PROJECT, Emulator
from marts_check import HOURLY_MODELS, MARTS, check_mart, table_differences

RAW_DATASET = "clickstream_raw"
DATASET = "analytics_test"
REFERENCE_DATASET = "analytics_reference"

# The partition column of every relation an incremental model reads.
PARTITION_COLUMNS = {
    "events": "event_time",
    "stg_clickstream__events": "event_date",
    "int_events__sessionized": "event_date",
    "fct_sessions": "session_date",
    "fct_traffic_hourly": "event_date",
}
# Read whole on purpose: the identity map (one row per identified device, no date).
UNPARTITIONED_INPUTS = {"int_identities__stitched"}


def write_profile(directory, endpoint):
    outputs = "".join(f"""\
    {name}:
      type: bigquery
      method: oauth-secrets
      token: dummy
      project: {PROJECT}
      dataset: {dataset}
      api_endpoint: {endpoint}
      location: US
      threads: 2
      priority: interactive
      job_retries: 0
      job_execution_timeout_seconds: 120
""" for name, dataset in (("bigquery", DATASET), ("bigquery_reference", REFERENCE_DATASET)))
    (directory / "profiles.yml").write_text(f"clickstream:\n  target: bigquery\n  outputs:\n{outputs}")


def create_raw_tables(client):
    """The loader's tables: events DAY-partitioned on event_time and clustered, and _partition_loads."""
    from google.cloud import bigquery

    client.create_dataset(RAW_DATASET, timeout=30)
    events = bigquery.Table(
        f"{PROJECT}.{RAW_DATASET}.events",
        schema=[bigquery.SchemaField(c["name"], c["type"], mode=c["mode"]) for c in h.bigquery_schema()],
    )
    events.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="event_time")
    events.clustering_fields = ["event_type", "category_code", "product_id"]
    client.create_table(events, timeout=30)
    loads = bigquery.Table(
        f"{PROJECT}.{RAW_DATASET}._partition_loads",
        schema=[bigquery.SchemaField(c["name"], c["type"], mode=c["mode"])
                for c in h.bigquery_schema(h.PARTITION_LOADS_COLUMNS)],
    )
    client.create_table(loads, timeout=30)


def load_rows(client, raw, rows):
    """Load rows as the loader does: per touched day, replace the day's rows
    (DELETE, then a load job of all the day's rows: the emulator rejects
    partition decorators and insertAll), then record the load."""
    from google.cloud import bigquery

    schema = [bigquery.SchemaField(c["name"], c["type"], mode=c["mode"]) for c in h.bigquery_schema()]
    table = f"`{PROJECT}.{RAW_DATASET}.events`"
    for day, day_rows in raw.add(rows).items():
        record = raw.load_record(day, day_rows)
        client.query(f"delete from {table} where event_time >= timestamp '{day} 00:00:00' "
                     f"and event_time < timestamp_add(timestamp '{day} 00:00:00', interval 1 day)").result(timeout=60)
        job = client.load_table_from_file(
            io.BytesIO("\n".join(json.dumps(r) for r in day_rows).encode()),
            f"{PROJECT}.{RAW_DATASET}.events",
            job_config=bigquery.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", schema=schema,
                                              write_disposition="WRITE_APPEND"),
            timeout=60,
        )
        job.result(timeout=60)
        client.query(
            f"insert into `{PROJECT}.{RAW_DATASET}._partition_loads` "
            "(partition_date, file_set, files, row_count, loaded_at, job_id, run_id) values "
            f"(date '{day}', '{record['file_set']}', '{record['files']}', {record['row_count']}, "
            f"current_timestamp(), '{record['job_id']}', '{record['run_id']}')"
        ).result(timeout=60)
    return raw


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dbt_bigquery")
    emulator = Emulator(workdir)
    emulator.start()
    try:
        client = emulator.client()
        create_raw_tables(client)
        raw = h.RawPartitions()
        load_rows(client, raw, fixture.EVENTS)

        write_profile(workdir, emulator.endpoint)
        # the models the hourly runs need, and the unit tests; the data tests and
        # the nightly tables come with the nightly build after the late purchase
        first = h.run_dbt(workdir, workdir, "build", "--select", "config.materialized:incremental",
                          "int_identities__stitched", "--exclude-resource-type", "test", target="bigquery")
        load_rows(client, raw, fixture.LATE_EVENTS)
        nightly = h.run_dbt(workdir, workdir, "build", "--selector", "nightly", target="bigquery")
        state = {"workdir": workdir, "client": client, "raw": raw, "first": first, "nightly": nightly}
        yield state
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def far_late_data(warehouse):
    workdir, client = warehouse["workdir"], warehouse["client"]
    load_rows(client, warehouse["raw"], fixture.FAR_LATE_EVENTS)
    hourly = h.run_dbt(workdir, workdir, "build", "--selector", "hourly", target="bigquery")
    # keep what the hourly run compiled and ran: the reference build writes its own target
    shutil.copytree(workdir / "target", workdir / "target_hourly")
    h.run_dbt(workdir, workdir, "run", "--full-refresh", "--select", "config.materialized:incremental",
              "int_identities__stitched", target="bigquery_reference", target_path="target_reference")
    differences = []
    for model in HOURLY_MODELS:
        differences += table_differences(model, fetch_all(client, DATASET, model),
                                         fetch_all(client, REFERENCE_DATASET, model))
    return dict(warehouse, hourly=hourly, differences=differences)


def fetch_all(client, dataset, model):
    return [dict(row.items()) for row in client.query(f"select * from `{PROJECT}.{dataset}.{model}`").result(timeout=60)]


def fetch(client):
    def fetch_rows(model, columns):
        sql = f"select {', '.join(columns)} from `{PROJECT}.{DATASET}.{model}`"
        return [dict(row.items()) for row in client.query(sql).result(timeout=60)]

    return fetch_rows


def test_raw_tables_are_created_like_the_loader_makes_them(warehouse):
    client = warehouse["client"]
    table = client.get_table(f"{PROJECT}.{RAW_DATASET}.events")
    assert table.time_partitioning.type_ == "DAY" and table.time_partitioning.field == "event_time"
    loads = client.get_table(f"{PROJECT}.{RAW_DATASET}._partition_loads")
    legacy = {"INTEGER": "INT64"}  # the API reports legacy type names
    assert [(f.name, legacy.get(f.field_type, f.field_type), f.mode) for f in loads.schema] == [
        ("partition_date", "DATE", "REQUIRED"), ("file_set", "STRING", "NULLABLE"), ("files", "STRING", "NULLABLE"),
        ("row_count", "INT64", "NULLABLE"), ("loaded_at", "TIMESTAMP", "NULLABLE"), ("job_id", "STRING", "NULLABLE"),
        ("run_id", "STRING", "NULLABLE")]
    rows = list(client.query(f"select partition_date, row_count from `{PROJECT}.{RAW_DATASET}._partition_loads` "
                             "order by loaded_at").result(timeout=60))
    # one row per day load: the two days, then 2024-03-11 again with the late purchase
    assert [(str(r["partition_date"]), r["row_count"]) for r in rows] == [
        ("2024-03-10", 20), ("2024-03-11", 9), ("2024-03-11", 10)]


def test_builds_run_models_tests_and_unit_tests(warehouse):
    first = warehouse["first"].stdout
    assert "ERROR=0" in first and "Completed successfully" in first
    for unit_test in ("stg_clickstream__events_keeps_one_copy_across_midnight", "int_events__sessionized_sessions_and_stitching",
                      "int_identities__stitched_login_and_shared_device", "fct_funnel_daily_funnel_maths"):
        assert unit_test in first
    out = warehouse["nightly"].stdout
    assert "ERROR=0" in out and "9 incremental models" in out and "unit_test" not in out


@pytest.mark.parametrize("model", MARTS)
def test_mart_matches_hand_computed_values(warehouse, model):
    check_mart(model, fetch(warehouse["client"]))


def test_hourly_models_equal_a_full_rebuild_after_far_late_data(far_late_data):
    assert "ERROR=0" in far_late_data["hourly"].stdout
    assert not far_late_data["differences"], "\n".join(far_late_data["differences"])
    # and the late data is in: the session crossing midnight has g00 (4 events)
    [crossing] = far_late_data["client"].query(
        f"select events from `{PROJECT}.{DATASET}.fct_sessions` where session_id = 'a6-1710114600'").result(timeout=60)
    assert crossing["events"] == 4


def test_incremental_models_are_partitioned_and_clustered(far_late_data):
    client = far_late_data["client"]
    for model in HOURLY_MODELS:
        table = client.get_table(f"{PROJECT}.{DATASET}.{model}")
        assert table.time_partitioning.type_ == "DAY", model
    assert client.get_table(f"{PROJECT}.{DATASET}.int_events__sessionized").time_partitioning.field == "event_date"
    assert client.get_table(f"{PROJECT}.{DATASET}.fct_sessions").time_partitioning.field == "session_date"
    # the emulator does not report clustering back, so read the DDL dbt sent
    log = (far_late_data["workdir"] / "logs" / "dbt.log").read_text()
    assert "cluster by event_type, anonymous_id" in log
    assert "cluster by event_type, session_id" in log
    assert "cluster by channel, device_class" in log
    assert "cluster by model" in log  # the partition log
    # the hourly run replaced exactly the changed days and their neighbours (static insert_overwrite)
    ran = (far_late_data["workdir"] / "target_hourly" / "run" / "clickstream" / "models" / "intermediate"
           / "int_events__sessionized.sql").read_text().lower()
    assert "when not matched by source" in ran
    partitions = re.search(r"date\(dbt_internal_dest\.event_date\) in \(([^)]*)\)", ran).group(1)
    assert re.findall(r"date '([0-9-]+)'", partitions) == [
        "2024-03-09", "2024-03-10", "2024-03-11", "2024-03-12", "2024-03-20", "2024-03-21", "2024-03-22"]


def relations_read(sql):
    """(table, text of the query block that reads it) for every table in a FROM or JOIN."""
    reads = []
    for match in re.finditer(r"\b(?:from|join)\s+`[^`]+`\.`[^`]+`\.`([^`]+)`", sql):
        block_end = sql.find("\n)", match.end())
        reads.append((match.group(1), sql[match.end():block_end if block_end >= 0 else len(sql)]))
    return reads


def test_compiled_sql_of_every_incremental_model_filters_its_inputs_partition_column(far_late_data):
    compiled_dir = far_late_data["workdir"] / "target_hourly" / "compiled" / "clickstream" / "models"
    problems, checked = [], 0
    for model in HOURLY_MODELS:
        [path] = [p for p in compiled_dir.rglob(f"{model}.sql") if not p.parent.name.endswith(".yml")]
        sql = path.read_text()
        assert '"mode": "incremental"' in sql, f"{model} was not compiled incrementally"
        reads = relations_read(sql)
        assert reads, model
        for table, block in reads:
            if table in UNPARTITIONED_INPUTS:
                continue
            column = PARTITION_COLUMNS[table]
            literal = "timestamp" if column == "event_time" else "date"
            lower = re.search(rf"\b{column} >= {literal} '\d{{4}}-\d\d-\d\d", block)
            upper = re.search(rf"\b{column} < {literal} '\d{{4}}-\d\d-\d\d", block)
            checked += 1
            if not (lower and upper):
                problems.append(f"{model} reads {table} without a range on {column}:\n{block[:600]}")
    assert not problems, "\n\n".join(problems)
    assert checked >= len(HOURLY_MODELS)


def test_docs_generate_without_catalog(far_late_data):
    # The emulator has no legacy `<dataset>.__TABLES__` meta-table, which
    # dbt-bigquery's catalog query reads, so the catalog step is skipped here
    # (--empty-catalog); the DuckDB test generates the full docs with catalog.
    workdir = far_late_data["workdir"]
    h.run_dbt(workdir, workdir, "docs", "generate", "--empty-catalog", target="bigquery")
    manifest = json.loads((workdir / "target" / "manifest.json").read_text())
    sessions = manifest["nodes"]["model.clickstream.fct_sessions"]
    assert sessions["description"] and all(c["description"] for c in sessions["columns"].values())
    assert (workdir / "target" / "index.html").exists()
