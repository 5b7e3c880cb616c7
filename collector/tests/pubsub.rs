//! The Pub/Sub sink against Google's Pub/Sub emulator: events posted to the collector arrive on
//! the subscription with their attributes, rejected events arrive on the dead-letter topic, and
//! when Pub/Sub goes away the collector answers 503 and reports itself not ready.
//!
//! Needs the emulator from the Google Cloud CLI. Without it the test is skipped with a message
//! naming what is missing (set CLICKSTREAM_REQUIRE_EMULATORS=1 to make that a failure, as CI does).

#![cfg(feature = "gcp")] // the cloud back-ends (default features)
#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use collector::{AppState, HttpSettings, StateSettings};
use common::{KEY, SOURCE};
use google_cloud_pubsub::client::Subscriber;
use queue::EventSink;
use queue::pubsub::{PubSubAdmin, PubSubConfig, PubSubSink};

const EMULATOR: &str = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";
const PROJECT: &str = "clickstream-test";

struct Emulator {
    child: Child,
    host: String,
    _data: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn emulator_path() -> Option<String> {
    let path = std::env::var("CLICKSTREAM_PUBSUB_EMULATOR").unwrap_or_else(|_| EMULATOR.to_owned());
    if Path::new(&path).exists() {
        return Some(path);
    }
    let message =
        format!("SKIPPED: Google's Pub/Sub emulator is not installed at {path} (it ships with the Google Cloud CLI)");
    if std::env::var_os("CLICKSTREAM_REQUIRE_EMULATORS").is_some() {
        panic!("{message}");
    }
    eprintln!("{message}");
    None
}

fn start_emulator(path: &str) -> Emulator {
    start_emulator_on(path, std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
}

fn start_emulator_on(path: &str, port: u16) -> Emulator {
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(path)
        .args(["--host=127.0.0.1", &format!("--port={port}")])
        .arg(format!("--dir={}", data.path().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the Pub/Sub emulator starts");
    let host = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&host).is_err() {
        assert!(Instant::now() < deadline, "the Pub/Sub emulator did not listen within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    Emulator { child, host, _data: data }
}

fn config(host: &str) -> PubSubConfig {
    let mut config = PubSubConfig::new(PROJECT, "events", "events-dead-letter");
    config.emulator_host = Some(host.to_owned());
    config.publish_timeout = Duration::from_secs(3);
    config
}

async fn receive(host: &str, subscription: &str, count: usize) -> Vec<google_cloud_pubsub::model::Message> {
    let subscriber = Subscriber::builder()
        .with_endpoint(format!("http://{host}"))
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .unwrap();
    let mut stream = subscriber.subscribe(config(host).subscription_path(subscription)).build();
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while messages.len() < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(remaining, stream.next()).await;
        let Ok(Some(Ok((message, handler)))) = next else {
            panic!("received {} of {count} messages on {subscription}", messages.len());
        };
        handler.ack();
        messages.push(message);
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_round_trip_through_the_emulator_and_a_dead_emulator_means_503() {
    let Some(path) = emulator_path() else { return };
    let mut emulator = start_emulator(&path);
    let pubsub = config(&emulator.host);
    let admin = PubSubAdmin::connect(pubsub.clone()).await.unwrap();
    admin.ensure_topic("events").await.unwrap();
    admin.ensure_topic("events-dead-letter").await.unwrap();
    admin.ensure_topic("events").await.expect("ensure_topic is idempotent");
    admin.ensure_subscription("events-batcher", "events", 60, Some("events-dead-letter"), 5).await.unwrap();
    admin.ensure_subscription("dead-letters", "events-dead-letter", 60, None, 0).await.unwrap();

    let sink: Arc<dyn EventSink> = Arc::new(PubSubSink::connect(pubsub.clone()).await.unwrap());
    let settings = StateSettings::with_keys(HashMap::from([(KEY.to_owned(), SOURCE.to_owned())]));
    let app = common::TestApp {
        router: collector::app(AppState::new(sink.clone(), settings), &HttpSettings::default()),
        sink: sink.clone(),
        spool: std::path::PathBuf::new(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let ready = app.send(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.json);

    let ids: Vec<String> = (0..25).map(|_| common::uuid()).collect();
    let mut events: Vec<_> = ids.iter().map(|id| common::page_view(id)).collect();
    events.push(serde_json::json!({"event_type": "add_to_cart", "anonymous_id": "a"}));
    let answer = app.post(serde_json::json!({"events": events})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["accepted"], 25);

    let received = receive(&emulator.host, "events-batcher", 25).await;
    let received_ids: HashSet<String> = received.iter().map(|m| m.attributes["event_id"].clone()).collect();
    assert_eq!(received_ids, ids.iter().cloned().collect::<HashSet<_>>());
    let first = event_model::Event::from_json_bytes(&received[0].data).unwrap();
    assert_eq!(first.source_id, SOURCE);
    assert_eq!(received[0].attributes["event_type"], "page_view");
    assert_eq!(received[0].attributes["source_id"], SOURCE);

    let dead = receive(&emulator.host, "dead-letters", 1).await;
    assert_eq!(dead[0].attributes["failure_stage"], "collector");
    let failed: event_model::FailedEvent = serde_json::from_slice(&dead[0].data).unwrap();
    assert_eq!(failed.index, Some(25));
    assert_eq!(failed.errors[0].field, "product.product_id");

    // Pub/Sub goes away: nothing can be made durable, so nothing is acknowledged.
    let _ = emulator.child.kill();
    let _ = emulator.child.wait();
    let answer = app.post(common::page_view(&common::uuid())).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.json);
    assert_eq!(answer.json["error"], "unavailable");
    assert!(answer.headers.contains_key("retry-after"));
    let ready = app.send(axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
}

fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

async fn create_topics(host: &str) {
    let admin = PubSubAdmin::connect(config(host)).await.unwrap();
    admin.ensure_topic("events").await.unwrap();
    admin.ensure_topic("events-dead-letter").await.unwrap();
    admin.ensure_subscription("events-batcher", "events", 60, Some("events-dead-letter"), 5).await.unwrap();
}

/// Receives from `events-batcher` until every id of `wanted` arrived or 30 s passed; returns
/// the ids received.
async fn receive_ids_until(host: &str, wanted: &HashSet<String>) -> HashSet<String> {
    let subscriber = Subscriber::builder()
        .with_endpoint(format!("http://{host}"))
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .unwrap();
    let mut stream = subscriber.subscribe(config(host).subscription_path("events-batcher")).build();
    let mut ids = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wanted.is_subset(&ids) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok((message, handler)))) = tokio::time::timeout(remaining, stream.next()).await else { break };
        handler.ack();
        ids.insert(message.attributes["event_id"].clone());
    }
    ids
}

/// Posts one page view with a new id until it is acknowledged, as a client retrying after 503
/// would; returns the id and how many attempts it took. Bounded: 80 attempts 250 ms apart.
async fn post_until_accepted(app: &common::TestApp) -> (String, usize) {
    for attempt in 1..=80 {
        let id = common::uuid();
        let answer = app.post(common::page_view(&id)).await;
        if answer.status == StatusCode::OK {
            return (id, attempt);
        }
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.json);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the collector did not recover within 20 s of Pub/Sub coming back");
}

/// Pub/Sub stops answering mid-run (the emulator paused with SIGSTOP: connections stay open and
/// nothing comes back), then comes back; later it dies and a new one starts on the same address.
/// Each time the collector answers 503 with Retry-After within its publish timeout — never 200,
/// never a hang — and accepts events again once Pub/Sub is back, without a restart. Every event
/// it acknowledged is on the subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_outages_mean_503_with_retry_after_and_recovery_without_a_restart() {
    use nix::sys::signal::Signal;
    let Some(path) = emulator_path() else { return };
    let emulator = start_emulator(&path);
    let host = emulator.host.clone();
    create_topics(&host).await;
    let sink: Arc<dyn EventSink> = Arc::new(PubSubSink::connect(config(&host)).await.unwrap());
    let settings = StateSettings::with_keys(HashMap::from([(KEY.to_owned(), SOURCE.to_owned())]));
    let app = common::TestApp {
        router: collector::app(AppState::new(sink.clone(), settings), &HttpSettings::default()),
        sink: sink.clone(),
        spool: std::path::PathBuf::new(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let mut acknowledged = HashSet::new();
    acknowledged.insert(post_until_accepted(&app).await.0);

    // Paused: the publish times out (3 s here), the answer is 503 with Retry-After.
    signal(&emulator.child, Signal::SIGSTOP);
    let started = Instant::now();
    let answer = app.post(common::page_view(&common::uuid())).await;
    let waited = started.elapsed();
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.json);
    assert!(answer.headers.contains_key("retry-after"), "{:?}", answer.headers);
    assert!(waited < Duration::from_secs(8), "the collector hung for {waited:?} on a stopped Pub/Sub");
    signal(&emulator.child, Signal::SIGCONT);
    let (id, attempts) = post_until_accepted(&app).await;
    acknowledged.insert(id);
    // The event answered 503 may arrive too (its publish completed after the pause): at least
    // once, never an acknowledged event missing.
    let ids = receive_ids_until(&host, &acknowledged).await;
    assert!(acknowledged.is_subset(&ids), "acknowledged {acknowledged:?}, on the subscription {ids:?}");

    // Dead, and a new Pub/Sub on the same address: 503 until its topic exists, then 200.
    let port: u16 = host.rsplit_once(':').unwrap().1.parse().unwrap();
    drop(emulator);
    let answer = app.post(common::page_view(&common::uuid())).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.json);
    assert!(answer.headers.contains_key("retry-after"));
    let _second = start_emulator_on(&path, port);
    create_topics(&host).await;
    let (id, after_restart) = post_until_accepted(&app).await;
    let received = receive(&host, "events-batcher", 1).await;
    assert_eq!(received[0].attributes["event_id"], id);
    eprintln!(
        "outage: 503 after {waited:?} on a paused Pub/Sub; accepted again after {attempts} attempt(s) on resume, \
         {after_restart} after a restart"
    );
}
