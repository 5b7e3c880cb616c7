//! Pub/Sub emulator → batcher → GCS emulator: what the collector publishes ends up as hourly
//! Parquet in the bucket, undecodable messages go to the dead-letter topic, and every message is
//! acked only after the write (nothing is redelivered to a second run).
//!
//! Needs Google's Pub/Sub emulator (Google Cloud CLI) and `gcp-storage-emulator` (PyPI, in the
//! project venv); without them the test is skipped loudly, or fails under
//! CLICKSTREAM_REQUIRE_EMULATORS=1.

#![cfg(feature = "gcp")] // the cloud back-ends (default features)
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use batcher::lake::{GcsLake, Lake};
use batcher::parquet_io::ParquetSettings;
use batcher::pubsub_source::{PubSubSourceConfig, drain};
use batcher::spool_source::RunBounds;
use batcher::writer::LakeWriter;
use common::{event, lake_contents, uuid};
use event_model::Event;
use google_cloud_pubsub::client::{Publisher, Subscriber};
use google_cloud_pubsub::model::Message;
use queue::EventSink;
use queue::pubsub::{PubSubAdmin, PubSubConfig, PubSubSink};

const PUBSUB: &str = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(host: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(host).is_err() {
        assert!(Instant::now() < deadline, "{host} did not listen within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn anonymous() -> google_cloud_auth::credentials::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_become_hourly_parquet_in_the_bucket() {
    if !Path::new(PUBSUB).exists() {
        return common::skip(&format!("Google's Pub/Sub emulator is not installed at {PUBSUB}"));
    }
    let gcs_emulator = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/gcp-storage-emulator");
    if !Path::new(gcs_emulator).exists() {
        return common::skip(&format!("gcp-storage-emulator is missing at {gcs_emulator} (run scripts/python-env.sh)"));
    }
    let data = tempfile::tempdir().unwrap();
    let pubsub_host = format!("127.0.0.1:{}", free_port());
    let _pubsub = Process(
        Command::new(PUBSUB)
            .arg("--host=127.0.0.1")
            .arg(format!("--port={}", pubsub_host.rsplit(':').next().unwrap()))
            .arg(format!("--dir={}", data.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let gcs_port = free_port();
    let _gcs = Process(
        Command::new(gcs_emulator)
            .args([
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                &gcs_port.to_string(),
                "--in-memory",
                "--default-bucket",
                "lake",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(&pubsub_host);
    wait_for(&format!("127.0.0.1:{gcs_port}"));

    let mut pubsub = PubSubConfig::new("clickstream-test", "events", "events-dead-letter");
    pubsub.emulator_host = Some(pubsub_host.clone());
    let admin = PubSubAdmin::connect(pubsub.clone()).await.unwrap();
    admin.ensure_topic("events").await.unwrap();
    admin.ensure_topic("events-dead-letter").await.unwrap();
    admin.ensure_subscription("events-batcher", "events", 60, Some("events-dead-letter"), 5).await.unwrap();
    admin.ensure_subscription("dead-letters", "events-dead-letter", 60, None, 0).await.unwrap();

    // Publish as the collector does, plus one message that is not an event.
    let sink = PubSubSink::connect(pubsub.clone()).await.unwrap();
    let mut events = Vec::new();
    for i in 0..120 {
        events.push(event(&uuid(), &format!("2026-11-24T{:02}:{:02}:00Z", 10 + i % 2, i % 60)));
    }
    sink.publish(&events.iter().map(Event::view).collect::<Vec<_>>(), &[]).await.unwrap();
    let publisher = Publisher::builder(pubsub.topic_path("events"))
        .with_endpoint(format!("http://{pubsub_host}"))
        .with_credentials(anonymous())
        .build()
        .await
        .unwrap();
    publisher.publish(Message::new().set_data("not json at all")).await.unwrap();

    let lake: Arc<dyn Lake> =
        Arc::new(GcsLake::connect("lake", "", Some(format!("http://127.0.0.1:{gcs_port}"))).await.unwrap());
    let dead_letters = PubSubSink::connect(pubsub.clone()).await.unwrap();
    let writer =
        LakeWriter::new(lake.clone(), ParquetSettings::default()).with_dead_letter_sink(Arc::new(dead_letters));
    let config = PubSubSourceConfig {
        pubsub: pubsub.clone(),
        subscription: "events-batcher".into(),
        flush_events: 50,
        flush_bytes: 64 * 1024 * 1024,
        flush_age: Duration::from_secs(2),
        max_lease: Duration::from_secs(120),
        lease_extension: Duration::from_secs(60),
    };
    let bounds = RunBounds {
        idle_exit: Some(Duration::from_secs(3)),
        max_runtime: Some(Duration::from_secs(60)),
        ..RunBounds::default()
    };
    let summary = drain(&config, &writer, bounds).await.unwrap();
    assert_eq!(summary.events, 120, "{summary:?}");
    assert_eq!(summary.dead_lettered, 1);

    let files = lake_contents(lake.as_ref()).await;
    assert!(files.keys().all(|p| p.starts_with("events/dt=2026-11-24/hour=1")), "{files:?}");
    let stored: HashSet<String> = files.values().flatten().cloned().collect();
    let expected: HashSet<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(stored, expected);

    // Everything was acked: a second run finds nothing.
    let again = drain(&config, &writer, RunBounds { idle_exit: Some(Duration::from_secs(2)), ..RunBounds::default() })
        .await
        .unwrap();
    assert_eq!(again.events, 0, "messages were redelivered: they had not been acked");

    // The undecodable message is on the dead-letter topic with its reason.
    let subscriber = Subscriber::builder()
        .with_endpoint(format!("http://{pubsub_host}"))
        .with_credentials(anonymous())
        .build()
        .await
        .unwrap();
    let mut stream = subscriber.subscribe(pubsub.subscription_path("dead-letters")).build();
    let (message, handler) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("a dead letter arrives")
        .unwrap()
        .unwrap();
    handler.ack();
    let failure: event_model::FailedEvent = serde_json::from_slice(&message.data).unwrap();
    assert_eq!(failure.payload, "not json at all");
    assert_eq!(failure.errors[0].code, "undecodable");
}
