//! Shared harness of the collector's integration tests: an app over a real spool in a temporary
//! directory, requests through `tower::ServiceExt::oneshot`, and readers of what was stored.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use collector::{AppState, HttpSettings, StateSettings};
use event_model::{Event, FailedEvent};
use http_body_util::BodyExt;
use queue::EventSink;
use queue::spool::{EVENTS_STREAM, FAILED_STREAM, SpoolReader, SpoolSink, SpoolWriterConfig, stream_dir};
use tower::ServiceExt;

/// The write key every test app accepts, and its source.
pub const KEY: &str = "test-write-key";
pub const SOURCE: &str = "test-shop";

pub struct TestApp {
    pub router: Router,
    pub sink: Arc<dyn EventSink>,
    pub spool: PathBuf,
    pub _dir: tempfile::TempDir,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl TestApp {
    pub fn spool() -> Self {
        Self::spool_with(|_| {}, HttpSettings::default(), SpoolWriterConfig::new)
    }

    pub fn spool_with(
        adjust: impl FnOnce(&mut StateSettings),
        http: HttpSettings,
        spool_config: impl FnOnce(PathBuf) -> SpoolWriterConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let sink: Arc<dyn EventSink> = Arc::new(SpoolSink::open(spool_config(spool.clone())).unwrap());
        let mut settings = StateSettings::with_keys(HashMap::from([(KEY.to_owned(), SOURCE.to_owned())]));
        adjust(&mut settings);
        let router = collector::app(AppState::new(sink.clone(), settings), &http);
        Self { router, sink, spool, _dir: dir }
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Answer { status, headers, json }
    }

    pub async fn post(&self, body: serde_json::Value) -> Answer {
        self.send(post_request(body.to_string().into_bytes(), &[("x-write-key", KEY)])).await
    }

    /// Closes the sink and returns every stored event and failure record.
    pub async fn stored(&self) -> (Vec<Event>, Vec<FailedEvent>) {
        self.sink.shutdown().await;
        let events = read_stream(&stream_dir(&self.spool, EVENTS_STREAM))
            .iter()
            .map(|r| Event::from_json_bytes(r).unwrap())
            .collect();
        let failed = read_stream(&stream_dir(&self.spool, FAILED_STREAM))
            .iter()
            .map(|r| serde_json::from_slice(r).unwrap())
            .collect();
        (events, failed)
    }
}

pub fn post_request(body: Vec<u8>, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::post("/v1/events").header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body)).unwrap()
}

/// Every record of a spool stream, without consuming it.
pub fn read_stream(dir: &Path) -> Vec<Vec<u8>> {
    let reader = SpoolReader::open(dir).unwrap();
    reader.recover_abandoned().unwrap();
    let mut records = Vec::new();
    for id in reader.sealed().unwrap() {
        let segment = reader.claim(id).unwrap().expect("segment is claimable");
        records.extend(segment.read().unwrap());
    }
    records
}

pub fn page_view(id: &str) -> serde_json::Value {
    serde_json::json!({
        "event_id": id,
        "event_type": "page_view",
        "anonymous_id": "anon-1",
        "event_time": chrono::Utc::now().to_rfc3339(),
        "page": {"url": "https://shop.example/", "title": "Home"}
    })
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
