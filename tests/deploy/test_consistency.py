"""Terraform agrees with the application: table layout, queue names, env vars and job CLIs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import (
    CLUSTERING,
    binary_path,
    DEAD_LETTER_SUBSCRIPTION,
    DEAD_LETTER_TOPIC,
    ENV_ROOT,
    EVENTS_TABLE,
    MODULES,
    PARTITION_FIELD,
    PARTITION_TYPE,
    RAW_DATASET,
    REPO,
    SUBSCRIPTION,
    TOPIC,
    blocks,
    check_command_line,
    env_root_modules,
    help_default,
    help_envs,
    help_text,
    load_hcl,
    resources,
    strip_interpolation,
    terraform_jobs,
)

SCHEMA_FILE = REPO / "event-model" / "schema" / "bigquery-events.json"


def _variables(path: Path) -> dict:
    return blocks(load_hcl(path), "variable")


def _locals(path: Path) -> dict:
    out: dict = {}
    for block in load_hcl(path).get("locals", []):
        out.update(block)
    return out


# --- BigQuery table ------------------------------------------------------------------------

def test_events_schema_comes_from_the_checked_in_file():
    schema_expr = _locals(ENV_ROOT / "main.tf")["events_schema_json"]
    m = re.fullmatch(r'\$\{file\("\$\{path\.module\}/([^"]+)"\)\}', schema_expr)
    assert m, f"events_schema_json should be file(\"${{path.module}}/...\"), is {schema_expr}"
    resolved = (ENV_ROOT / m.group(1)).resolve()
    assert resolved == SCHEMA_FILE.resolve(), f"schema path resolves to {resolved}, not {SCHEMA_FILE}"
    assert env_root_modules()["bigquery"]["events_schema_json"] == "${local.events_schema_json}"
    table = resources(load_hcl(MODULES / "bigquery" / "main.tf"))[("google_bigquery_table", "events")]
    assert table["schema"] == "${var.events_schema_json}"
    # Not copied anywhere under terraform/.
    for path in (REPO / "terraform").rglob("*.json"):
        pytest.fail(f"unexpected JSON under terraform/ (a copied schema?): {path}")


def test_schema_file_has_the_partition_and_clustering_columns():
    fields = {f["name"]: f for f in json.loads(SCHEMA_FILE.read_text())}
    assert fields[PARTITION_FIELD]["type"] == "TIMESTAMP"
    assert fields[PARTITION_FIELD]["mode"] == "REQUIRED"
    for column in CLUSTERING:
        assert column in fields, f"clustering column {column} not in the schema"


def test_events_table_partitioning_and_clustering():
    bq = env_root_modules()["bigquery"]
    assert bq["partition_type"] == PARTITION_TYPE
    assert bq["partition_field"] == PARTITION_FIELD
    assert bq["clustering_fields"] == CLUSTERING
    # The module's own defaults say the same, and the table uses the variables.
    variables = _variables(MODULES / "bigquery" / "variables.tf")
    assert variables["partition_type"]["default"] == PARTITION_TYPE
    assert variables["partition_field"]["default"] == PARTITION_FIELD
    assert variables["clustering_fields"]["default"] == CLUSTERING
    assert variables["require_partition_filter"]["default"] is False
    assert variables["raw_dataset_id"]["default"] == RAW_DATASET
    assert variables["events_table_id"]["default"] == EVENTS_TABLE
    table = resources(load_hcl(MODULES / "bigquery" / "main.tf"))[("google_bigquery_table", "events")]
    partitioning = table["time_partitioning"][0]
    assert partitioning["type"] == "${var.partition_type}"
    assert partitioning["field"] == "${var.partition_field}"
    assert table["clustering"] == "${var.clustering_fields}"
    assert table["require_partition_filter"] == "${var.require_partition_filter}"


def _loader_table_definition() -> dict:
    path = binary_path("clickstream-loader")
    help_text("clickstream-loader")  # fails with what to build when the binary is missing
    proc = subprocess.run([str(path), "table-definition"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_loader_writes_the_table_terraform_creates():
    """The loader's own definition of the raw table (what it creates, and what its DAY load jobs
    need) is the one Terraform provisions: partitioning, clustering, the contract's schema."""
    loader = _loader_table_definition()
    bq = env_root_modules()["bigquery"]
    assert loader["timePartitioning"] == {"type": bq["partition_type"], "field": bq["partition_field"]}
    assert loader["clustering"]["fields"] == bq["clustering_fields"]
    assert loader["schema"]["fields"] == json.loads(SCHEMA_FILE.read_text())
    assert "expirationMs" not in loader["timePartitioning"], "no retention unless configured"


def test_ten_years_of_day_partitions_stay_under_bigquerys_cap():
    variables = _variables(MODULES / "bigquery" / "variables.tf")
    assert variables["partition_type"]["default"] == "DAY"
    # 10,000 partitions per table: days last 27 years; hours would last 416 days.
    assert 10 * 366 < 10_000 < 417 * 24


def test_retention_is_optional_off_by_default_and_wired_to_the_table():
    env = _variables(ENV_ROOT / "variables.tf")
    assert env["bigquery_partition_expiration_days"]["default"] is None
    assert env_root_modules()["bigquery"]["partition_expiration_days"] == "${var.bigquery_partition_expiration_days}"
    module = _variables(MODULES / "bigquery" / "variables.tf")
    assert module["partition_expiration_days"]["default"] is None
    table = resources(load_hcl(MODULES / "bigquery" / "main.tf"))[("google_bigquery_table", "events")]
    assert "var.partition_expiration_days" in table["time_partitioning"][0]["expiration_ms"]
    expiring = subprocess.run(
        [str(binary_path("clickstream-loader")), "table-definition", "--partition-expiration-days", "1095"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert json.loads(expiring.stdout)["timePartitioning"]["expirationMs"] == str(1095 * 86_400_000)


def test_the_loader_job_runs_within_a_daily_job_budget_below_bigquerys_cap():
    env = _variables(ENV_ROOT / "variables.tf")
    budget = env["loader_daily_job_budget"]["default"]
    assert budget == 1000 and budget < 1500
    assert terraform_jobs()["loader"]["env"]["CLICKSTREAM_LOADER_DAILY_JOB_BUDGET"] == "${tostring(var.loader_daily_job_budget)}"
    assert "1000" in help_text("clickstream-loader", "load"), "the loader's own BigQuery default is the same"


def test_environment_dataset_and_table_names():
    variables = _variables(ENV_ROOT / "variables.tf")
    assert variables["bigquery_raw_dataset_id"]["default"] == RAW_DATASET
    assert variables["bigquery_staging_dataset_id"]["default"] == "clickstream_staging"
    assert variables["bigquery_marts_dataset_id"]["default"] == "clickstream_marts"
    assert variables["bigquery_events_table_id"]["default"] == EVENTS_TABLE
    assert variables["bigquery_require_partition_filter"]["default"] is False


# --- Pub/Sub names -------------------------------------------------------------------------

def test_pubsub_names_match_the_contract():
    for path in (ENV_ROOT / "variables.tf", MODULES / "pubsub" / "variables.tf"):
        variables = _variables(path)
        prefix = "pubsub_" if path.parent == ENV_ROOT else ""
        assert variables[f"{prefix}topic_name"]["default"] == TOPIC
        assert variables[f"{prefix}dead_letter_topic_name"]["default"] == DEAD_LETTER_TOPIC
        assert variables[f"{prefix}subscription_name"]["default"] == SUBSCRIPTION
        assert variables[f"{prefix}dead_letter_subscription_name"]["default"] == DEAD_LETTER_SUBSCRIPTION


def test_pubsub_dead_letter_wiring():
    res = resources(load_hcl(MODULES / "pubsub" / "main.tf"))
    sub = res[("google_pubsub_subscription", "batcher")]
    assert sub["topic"] == "${google_pubsub_topic.events.id}"
    assert sub["dead_letter_policy"][0]["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    audit = res[("google_pubsub_subscription", "dead_letter_audit")]
    assert audit["topic"] == "${google_pubsub_topic.dead_letter.id}"
    # The Pub/Sub service agent can publish dead letters and ack the source subscription.
    assert res[("google_pubsub_topic_iam_member", "dead_letter_agent_publisher")]["role"] == "roles/pubsub.publisher"
    assert res[("google_pubsub_subscription_iam_member", "dead_letter_agent_subscriber")]["role"] == "roles/pubsub.subscriber"


def test_pubsub_names_match_the_collector_defaults():
    text = help_text("clickstream-collector")
    assert help_default(text, "--pubsub-topic") == TOPIC
    assert help_default(text, "--pubsub-dead-letter-topic") == DEAD_LETTER_TOPIC


def test_pubsub_names_match_the_batcher_defaults():
    text = help_text("clickstream-batcher", "run")
    assert help_default(text, "--pubsub-subscription") == SUBSCRIPTION


def test_bigquery_names_match_the_loader_defaults():
    text = help_text("clickstream-loader", "load")
    assert help_default(text, "--bigquery-dataset") == RAW_DATASET
    assert help_default(text, "--bigquery-table") == EVENTS_TABLE


# --- Environment variables and job command lines ------------------------------------------

def test_collector_environment_variables_exist():
    text = (MODULES / "collector_service" / "main.tf").read_text()
    names = set(re.findall(r"\b(CLICKSTREAM_[A-Z0-9_]+)\b", text))
    assert "CLICKSTREAM_WRITE_KEYS" in names and "CLICKSTREAM_SINK" in names
    known = help_envs(help_text("clickstream-collector"))
    unknown = sorted(names - known)
    assert not unknown, f"collector service sets variables clickstream-collector does not read: {unknown}"


def _job_binary(job: dict) -> str:
    return Path(job["command"][0]).name


JOB_KEYS = sorted(terraform_jobs())


def test_job_names_and_binaries():
    jobs = terraform_jobs()
    assert set(jobs) == {"batcher", "compactor", "loader", "backfill"}
    expected = {
        "batcher": ("clickstream-batcher", "clickstream-batcher", "run"),
        "compactor": ("clickstream-compactor", "clickstream-batcher", "compact"),
        "loader": ("clickstream-loader", "clickstream-loader", "load"),
        "backfill": ("clickstream-backfill", "clickstream-batcher", "backfill"),
    }
    for key, (name, binary, sub) in expected.items():
        assert jobs[key]["name"] == name
        assert _job_binary(jobs[key]) == binary
        assert jobs[key]["args"][0] == sub


@pytest.mark.parametrize("key", JOB_KEYS)
def test_job_command_line_matches_the_binary(key):
    job = terraform_jobs()[key]
    binary = _job_binary(job)
    args = [strip_interpolation(a) for a in job["args"]]
    problems = check_command_line(binary, args, f"terraform job {key}")
    assert not problems, "\n".join(problems)
    env = job.get("env") or {}
    if env:
        known = help_envs(help_text(binary, args[0]))
        unknown = sorted(set(env) - known)
        assert not unknown, f"job {key} sets variables `{binary} {args[0]}` does not read: {unknown}"


def test_lake_url_passed_to_the_jobs_is_the_lake_bucket():
    root = load_hcl(ENV_ROOT / "main.tf")
    local = {}
    for block in root.get("locals", []):
        local.update(block)
    assert local["lake_url"] == "gs://${local.lake_bucket_name}"
    assert env_root_modules()["lake_bucket"]["name"] == "${local.lake_bucket_name}"
    jobs = terraform_jobs()
    assert jobs["batcher"]["env"]["CLICKSTREAM_LAKE"] == "${local.lake_url}"
    for key in ("compactor", "loader", "backfill"):
        assert "--lake=${local.lake_url}" in jobs[key]["args"], key


def test_least_privilege_grants():
    modules = env_root_modules()
    lake = {(g["role"], g["member"]) for g in modules["lake_bucket"]["iam_members"]}
    assert lake == {
        ("roles/storage.objectCreator", "${local.sa.batcher}"),
        ("roles/storage.objectUser", "${local.sa.compactor}"),
        ("roles/storage.objectViewer", "${local.sa.loader}"),
    }
    pubsub = modules["pubsub"]
    assert pubsub["publisher_members"] == ["${local.sa.collector}"]
    assert pubsub["subscriber_members"] == ["${local.sa.batcher}"]
    project_roles = modules["service_accounts"]["project_roles"]
    assert project_roles == {"loader": ["roles/bigquery.jobUser"], "dbt": ["roles/bigquery.jobUser"]}
    grants = modules["bigquery"]["dataset_iam_members"]
    assert 'dataset = "raw", role = "roles/bigquery.dataEditor", member = local.sa.loader' in grants
    assert grants.count("local.sa.loader") == 1, "the loader may only edit the raw dataset"
    assert grants.count("local.sa.dbt") == 3, "dbt: viewer on raw, editor on staging and marts only"
    assert modules["jobs"]["executor_members"] == ["${local.sa.kestra}"]
