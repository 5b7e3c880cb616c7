//! The BigQuery path against the `bqemulator` emulator (from the project venv): a dry run plans
//! without creating anything; the table is created DAY-partitioned and clustered (read back and
//! checked); a partition is loaded, reloaded and extended by a late file without duplicates; the
//! loads, jobs and runs are recorded and the daily job budget counts the jobs. The emulator cannot read `gs://`, so
//! the loader sends the same load job with the files uploaded; the `gs://` form is covered by the
//! request-shape unit tests in `src/bigquery.rs`.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::path::Path;
use std::process::Command;

use batcher::lake::LocalLake;
use common::{PROJECT, events};
use serde_json::{Value, json};

fn load_output(endpoint: &str, lake: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clickstream-loader"))
        .args([
            "load",
            "--warehouse",
            "bigquery",
            "--bigquery-project",
            PROJECT,
            "--bigquery-endpoint",
            endpoint,
            "--lake",
        ])
        .arg(lake)
        .args(extra)
        .output()
        .unwrap()
}

fn load(endpoint: &str, lake: &Path, extra: &[&str]) -> String {
    let output = load_output(endpoint, lake, extra);
    assert!(output.status.success(), "loader failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

async fn put(lake: &LocalLake, hour: &str, name: &str, count: usize) {
    common::put(lake, hour, name, &events(hour, count)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_partition_is_created_loaded_and_reloaded_without_duplicates() {
    let Some(emulator) = common::bqemulator().await else { return };
    let endpoint = emulator.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    put(&lake, "2026-11-24T10:00:00Z", "spool-1", 30).await;
    put(&lake, "2026-11-24T11:00:00Z", "spool-1", 12).await;
    put(&lake, "2026-11-25T00:00:00Z", "spool-2", 4).await;

    // A dry run plans without creating anything.
    let plan: Value = serde_json::from_str(&load(&endpoint, dir.path(), &["--dry-run"])).unwrap();
    assert_eq!(plan["budget"], json!({"daily_jobs": 1000, "used_last_24h": 0, "available": 1000}));
    assert_eq!(plan["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(plan["totals"]["jobs"], 3, "uploads take one job per file: {plan:#}");
    let datasets: Value = emulator.get("datasets").await;
    assert!(datasets["datasets"].as_array().is_none_or(Vec::is_empty), "a dry run created {datasets}");

    let first = load(&endpoint, dir.path(), &[]);
    assert!(first.starts_with("loader: 2 partitions loaded, 0 skipped, 0 deferred, 46 rows"), "{first}");

    let table: Value = emulator.get("datasets/clickstream_raw/tables/events").await;
    assert_eq!(table["timePartitioning"]["type"], "DAY", "{table}");
    assert_eq!(table["timePartitioning"]["field"], "event_time");
    assert_eq!(table["clustering"]["fields"], json!(loader::table::CLUSTERING));
    assert_eq!(table["schema"]["fields"].as_array().unwrap().len(), event_model::schema::FIELDS.len());

    let total = "select count(*) from `test-project.clickstream_raw.events`";
    assert_eq!(emulator.count(total).await, 46);

    // Unchanged days are skipped; a forced reload replaces the partition instead of appending.
    let again = load(&endpoint, dir.path(), &[]);
    assert!(again.starts_with("loader: 0 partitions loaded, 2 skipped"), "{again}");
    load(&endpoint, dir.path(), &["--from", "2026-11-24", "--to", "2026-11-24"]);
    assert_eq!(emulator.count(total).await, 46, "reloading a day duplicated it");

    // A late file for hour 10 reloads that day only.
    put(&lake, "2026-11-24T10:00:00Z", "spool-3", 5).await;
    let late = load(&endpoint, dir.path(), &[]);
    assert!(late.starts_with("loader: 1 partitions loaded, 1 skipped, 0 deferred, 47 rows"), "{late}");
    assert_eq!(emulator.count(total).await, 51);
    let numeric = "select count(*) from `test-project.clickstream_raw.events` where price = 12.34";
    assert_eq!(emulator.count(numeric).await, 51, "prices load as exact NUMERIC");
    let loads =
        "select count(*) from `test-project.clickstream_raw._partition_loads` where partition_date = date '2026-11-24'";
    assert_eq!(emulator.count(loads).await, 3);
    // 3 upload jobs, then 2 for the forced day, then 3 for the late day's files.
    let jobs = "select count(*) from `test-project.clickstream_raw._load_jobs`";
    assert_eq!(emulator.count(jobs).await, 8);

    // The budget counts those jobs: with 9 a day, the next changed day (2 files) must wait.
    put(&lake, "2026-11-25T03:00:00Z", "spool-4", 2).await;
    let output = load_output(&endpoint, dir.path(), &["--daily-job-budget", "9"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("loader: 0 partitions loaded, 1 skipped, 1 deferred"), "{stdout}");
    let runs = "select count(*) from `test-project.clickstream_raw._load_runs` where outcome = 'budget_exhausted'";
    assert_eq!(emulator.count(runs).await, 1);
}
