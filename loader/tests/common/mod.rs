//! Shared helpers of the loader's integration tests: the project venv, a lake and a DuckDB
//! warehouse in a temporary directory driven through the real binary, generated events, and the
//! `bqemulator` BigQuery emulator.

#![allow(dead_code)] // each test file uses its own part

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use batcher::lake::{Lake, LocalLake, hour_prefix};
use batcher::parquet_io::{ParquetSettings, write_events};
use chrono::{DateTime, Utc};
use event_model::{Event, EventType};
use serde_json::{Value, json};

/// The BigQuery project the emulator tests use.
pub const PROJECT: &str = "test-project";
/// The repository root.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Reports a skipped test loudly; under CLICKSTREAM_REQUIRE_EMULATORS a skip is a failure.
pub fn skip(why: &str) {
    let message = format!("SKIPPED: {why}");
    if std::env::var_os("CLICKSTREAM_REQUIRE_EMULATORS").is_some() {
        panic!("{message}");
    }
    eprintln!("{message}");
}

/// The project venv's Python (with duckdb and bqemulator), if present.
pub fn python() -> Option<String> {
    let path = format!("{ROOT}/.venv/bin/python");
    if Path::new(&path).exists() {
        return Some(path);
    }
    skip(&format!("the project venv is missing at {path} (run scripts/python-env.sh)"));
    None
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `count` product views spread over the hour starting at `hour`, each with its own id, a
/// product of four and an exact price of 12.34.
pub fn events(hour: &str, count: usize) -> Vec<Event> {
    let start: DateTime<Utc> = hour.parse().unwrap();
    (0..count)
        .map(|i| {
            let offset = chrono::Duration::milliseconds(i as i64 * 3_600_000 / count.max(1) as i64);
            let mut e =
                Event::new(uuid::Uuid::new_v4().to_string(), EventType::ProductView, start + offset, start, "test");
            e.anonymous_id = Some(format!("a-{i}"));
            e.product_id = Some(format!("p-{}", i % 4));
            e.price = Some(event_model::Money::parse("12.34").unwrap());
            e
        })
        .collect()
}

/// Writes `events` as `<name>.parquet` in the folder of `hour`, as the batcher does.
pub async fn put(lake: &dyn Lake, hour: &str, name: &str, events: &[Event]) {
    let prefix = hour_prefix(hour.parse().unwrap());
    lake.put(&format!("{prefix}{name}.parquet"), write_events(events, ParquetSettings::default()).unwrap())
        .await
        .unwrap();
}

/// A local lake and DuckDB warehouse in a temporary directory.
pub struct Local {
    _dir: tempfile::TempDir,
    pub lake_dir: PathBuf,
    pub database: PathBuf,
    pub python: String,
    pub lake: Arc<LocalLake>,
}

/// A fresh [`Local`], or `None` (skipped) without the project venv.
pub fn local() -> Option<Local> {
    let python = python()?;
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    let database = dir.path().join("warehouse.duckdb");
    let lake = Arc::new(LocalLake::new(&lake_dir));
    Some(Local { _dir: dir, lake_dir, database, python, lake })
}

impl Local {
    /// `clickstream-loader load` on this lake and warehouse, with `extra` arguments.
    pub fn load(&self, extra: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_clickstream-loader"))
            .arg("load")
            .arg("--lake")
            .arg(&self.lake_dir)
            .arg("--duckdb-path")
            .arg(&self.database)
            .args(["--duckdb-python", &self.python])
            .args(extra)
            .output()
            .unwrap()
    }

    /// Like [`load`](Self::load), asserting success; returns stdout.
    pub fn load_ok(&self, extra: &[&str]) -> String {
        let output = self.load(extra);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// The dry-run plan as JSON.
    pub fn plan(&self, extra: &[&str]) -> Value {
        let mut args = vec!["--dry-run"];
        args.extend_from_slice(extra);
        serde_json::from_str(&self.load_ok(&args)).unwrap()
    }

    /// A read-only query of the warehouse, its rows as JSON.
    pub fn query(&self, sql: &str) -> Value {
        let script = "import duckdb, json, sys\ncon = duckdb.connect(sys.argv[1], read_only=True)\ncon.execute('SET enable_progress_bar = false')\nprint(json.dumps(con.execute(sys.argv[2]).fetchall(), default=str))";
        let output = Command::new(&self.python).args(["-c", script]).arg(&self.database).arg(sql).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

/// The `bqemulator` BigQuery emulator, started from the project venv with its own home.
pub struct BigQueryEmulator {
    _process: Process,
    _home: tempfile::TempDir,
    /// Its REST address.
    pub address: SocketAddr,
    http: reqwest::Client,
}

/// Starts the emulator and waits until it answers, or `None` (skipped) without the venv.
pub async fn bqemulator() -> Option<BigQueryEmulator> {
    let python = python()?;
    let home = tempfile::tempdir().unwrap();
    let (rest, grpc) = (free_port(), free_port());
    let process = Process(
        Command::new(&python)
            .arg(format!("{ROOT}/tests/dbt/bq_emulator.py"))
            .args([rest.to_string(), grpc.to_string()])
            .env("HOME", home.path())
            .current_dir(home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let emulator = BigQueryEmulator {
        _process: process,
        _home: home,
        address: format!("127.0.0.1:{rest}").parse().unwrap(),
        http: reqwest::Client::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let url = format!("{}/bigquery/v2/projects/{PROJECT}/datasets", emulator.endpoint());
        if emulator.http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Some(emulator);
        }
        assert!(Instant::now() < deadline, "bqemulator did not answer within 90 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

impl BigQueryEmulator {
    /// Its root URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A GET of a REST path (after `/bigquery/v2/projects/PROJECT/`), as JSON.
    pub async fn get(&self, path: &str) -> Value {
        let url = format!("{}/bigquery/v2/projects/{PROJECT}/{path}", self.endpoint());
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The single number a `select count(…)` query answers.
    pub async fn count(&self, sql: &str) -> u64 {
        let answer: Value = self
            .http
            .post(format!("{}/bigquery/v2/projects/{PROJECT}/queries", self.endpoint()))
            .json(&json!({"query": sql, "useLegacySql": false}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["rows"][0]["f"][0]["v"].as_str().unwrap_or_else(|| panic!("no count in {answer}")).parse().unwrap()
    }
}
