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
