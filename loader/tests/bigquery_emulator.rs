//! The BigQuery path against the `bqemulator` emulator (from the project venv): a dry run plans
//! without creating anything; the table is created DAY-partitioned and clustered (read back and
//! checked); a partition is loaded, reloaded and extended by a late file without duplicates; the
//! loads, jobs and runs are recorded and the daily job budget counts the jobs. The emulator cannot read `gs://`, so
//! the loader sends the same load job with the files uploaded; the `gs://` form is covered by the
//! request-shape unit tests in `src/bigquery.rs`.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use batcher::lake::{Lake, LocalLake, hour_prefix};
use batcher::parquet_io::{ParquetSettings, write_events};
use chrono::{DateTime, Utc};
use event_model::{Event, EventType};
use serde_json::{Value, json};

const PROJECT: &str = "test-project";

struct Emulator {
    child: Child,
    endpoint: String,
    _home: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start() -> Option<Emulator> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let python = format!("{root}/.venv/bin/python");
    if !Path::new(&python).exists() {
        let message = format!("SKIPPED: the project venv (with bqemulator) is missing at {python}");
        if std::env::var_os("CLICKSTREAM_REQUIRE_EMULATORS").is_some() {
            panic!("{message}");
        }
        eprintln!("{message}");
        return None;
    }
    let home = tempfile::tempdir().unwrap();
    let (rest, grpc) = (free_port(), free_port());
    let child = Command::new(&python)
        .arg(format!("{root}/tests/dbt/bq_emulator.py"))
        .args([rest.to_string(), grpc.to_string()])
        .env("HOME", home.path())
        .current_dir(home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some(Emulator { child, endpoint: format!("http://127.0.0.1:{rest}"), _home: home })
}

async fn wait_ready(http: &reqwest::Client, endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let url = format!("{endpoint}/bigquery/v2/projects/{PROJECT}/datasets");
        if let Ok(response) = http.get(&url).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "bqemulator did not answer within 90 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn count(http: &reqwest::Client, endpoint: &str, sql: &str) -> u64 {
    let answer: Value = http
        .post(format!("{endpoint}/bigquery/v2/projects/{PROJECT}/queries"))
        .json(&json!({"query": sql, "useLegacySql": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["rows"][0]["f"][0]["v"].as_str().unwrap_or_else(|| panic!("no count in {answer}")).parse().unwrap()
}

fn events(hour: &str, count: usize) -> Vec<Event> {
    let start: DateTime<Utc> = hour.parse().unwrap();
    (0..count)
        .map(|i| {
            let mut e = Event::new(
                uuid::Uuid::new_v4().to_string(),
                EventType::ProductView,
                start + chrono::Duration::seconds(i as i64 * 7),
                start,
                "shop",
            );
            e.anonymous_id = Some(format!("a-{i}"));
            e.product_id = Some(format!("p-{}", i % 3));
            e.price = Some(event_model::Money::parse("12.34").unwrap());
            e
        })
        .collect()
}

fn load(endpoint: &str, lake: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream-loader"))
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
        .unwrap();
    assert!(output.status.success(), "loader failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

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

async fn put(lake: &LocalLake, hour: &str, name: &str, count: usize) {
    let prefix = hour_prefix(hour.parse().unwrap());
    lake.put(
        &format!("{prefix}{name}.parquet"),
        write_events(&events(hour, count), ParquetSettings::default()).unwrap(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_partition_is_created_loaded_and_reloaded_without_duplicates() {
    let Some(emulator) = start() else { return };
    let http = reqwest::Client::new();
    wait_ready(&http, &emulator.endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    put(&lake, "2026-11-24T10:00:00Z", "spool-1", 30).await;
    put(&lake, "2026-11-24T11:00:00Z", "spool-1", 12).await;
    put(&lake, "2026-11-25T00:00:00Z", "spool-2", 4).await;

    // A dry run plans without creating anything.
    let plan: Value = serde_json::from_str(&load(&emulator.endpoint, dir.path(), &["--dry-run"])).unwrap();
    assert_eq!(plan["budget"], json!({"daily_jobs": 1000, "used_last_24h": 0, "available": 1000}));
    assert_eq!(plan["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(plan["totals"]["jobs"], 3, "uploads take one job per file: {plan:#}");
    let datasets: Value = http
        .get(format!("{}/bigquery/v2/projects/{PROJECT}/datasets", emulator.endpoint))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(datasets["datasets"].as_array().is_none_or(Vec::is_empty), "a dry run created {datasets}");

    let first = load(&emulator.endpoint, dir.path(), &[]);
    assert!(first.starts_with("loader: 2 partitions loaded, 0 skipped, 0 deferred, 46 rows"), "{first}");

    let table: Value = http
        .get(format!("{}/bigquery/v2/projects/{PROJECT}/datasets/clickstream_raw/tables/events", emulator.endpoint))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(table["timePartitioning"]["type"], "DAY", "{table}");
    assert_eq!(table["timePartitioning"]["field"], "event_time");
    assert_eq!(table["clustering"]["fields"], json!(loader::table::CLUSTERING));
    assert_eq!(table["schema"]["fields"].as_array().unwrap().len(), event_model::schema::FIELDS.len());

    let total = "select count(*) from `test-project.clickstream_raw.events`";
    assert_eq!(count(&http, &emulator.endpoint, total).await, 46);

    // Unchanged days are skipped; a forced reload replaces the partition instead of appending.
    let again = load(&emulator.endpoint, dir.path(), &[]);
    assert!(again.starts_with("loader: 0 partitions loaded, 2 skipped"), "{again}");
    load(&emulator.endpoint, dir.path(), &["--from", "2026-11-24", "--to", "2026-11-24"]);
    assert_eq!(count(&http, &emulator.endpoint, total).await, 46, "reloading a day duplicated it");

    // A late file for hour 10 reloads that day only.
    put(&lake, "2026-11-24T10:00:00Z", "spool-3", 5).await;
    let late = load(&emulator.endpoint, dir.path(), &[]);
    assert!(late.starts_with("loader: 1 partitions loaded, 1 skipped, 0 deferred, 47 rows"), "{late}");
    assert_eq!(count(&http, &emulator.endpoint, total).await, 51);
    let numeric = "select count(*) from `test-project.clickstream_raw.events` where price = 12.34";
    assert_eq!(count(&http, &emulator.endpoint, numeric).await, 51, "prices load as exact NUMERIC");
    let loads =
        "select count(*) from `test-project.clickstream_raw._partition_loads` where partition_date = date '2026-11-24'";
    assert_eq!(count(&http, &emulator.endpoint, loads).await, 3);
    // 3 upload jobs, then 2 for the forced day, then 3 for the late day's files.
    let jobs = "select count(*) from `test-project.clickstream_raw._load_jobs`";
    assert_eq!(count(&http, &emulator.endpoint, jobs).await, 8);

    // The budget counts those jobs: with 9 a day, the next changed day (2 files) must wait.
    put(&lake, "2026-11-25T03:00:00Z", "spool-4", 2).await;
    let output = load_output(&emulator.endpoint, dir.path(), &["--daily-job-budget", "9"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("loader: 0 partitions loaded, 1 skipped, 1 deferred"), "{stdout}");
    let runs = "select count(*) from `test-project.clickstream_raw._load_runs` where outcome = 'budget_exhausted'";
    assert_eq!(count(&http, &emulator.endpoint, runs).await, 1);
}
