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

/// The collector binary running on a spool in a temporary directory, listening on an ephemeral
/// loopback port it chose itself (read from its log, so no port is picked then raced for).
/// Killed on drop.
pub struct RunningCollector {
    pub child: std::process::Child,
    pub address: std::net::SocketAddr,
    pub spool: PathBuf,
    pub _dir: tempfile::TempDir,
}

impl RunningCollector {
    /// Starts the binary with `args` beyond the listen address and spool directory, and waits
    /// (at most 20 s) until it listens.
    pub fn start(args: &[&str]) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clickstream-collector"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--spool-dir"])
            .arg(&spool)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the collector binary starts");
        let stderr = child.stderr.take().unwrap();
        let (found, address) = std::sync::mpsc::channel();
        // Reads the log to its end, so the collector never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("\"address\":\"") {
                    let rest = &line[at + 11..];
                    if let (Some(end), Some(found)) = (rest.find('"'), found.take()) {
                        let _ = found.send(rest[..end].to_owned());
                    }
                }
            }
        });
        let address = match address.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(address) => address.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("the collector did not log its listening address within 20 s");
            }
        };
        Self { child, address, spool, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
    pub fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for RunningCollector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
