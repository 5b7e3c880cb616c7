//! The embedded warehouse: load, reload without duplicates, late files, forced ranges, schema
//! additions, and a corrupt file that leaves the table as it was — through the real binary.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use batcher::lake::{Lake, LocalLake, hour_prefix};
use batcher::parquet_io::{ParquetSettings, write_events};
use chrono::{DateTime, Utc};
use event_model::{Event, EventType};

fn python() -> Option<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    if Path::new(path).exists() {
        return Some(path.to_owned());
    }
    let message = format!("SKIPPED: the project venv is missing at {path} (run scripts/python-env.sh)");
    if std::env::var_os("CLICKSTREAM_REQUIRE_EMULATORS").is_some() {
        panic!("{message}");
    }
    eprintln!("{message}");
    None
}

struct Setup {
    _dir: tempfile::TempDir,
    lake_dir: PathBuf,
    database: PathBuf,
    python: String,
    lake: Arc<LocalLake>,
}

fn setup() -> Option<Setup> {
    let python = python()?;
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    let database = dir.path().join("warehouse.duckdb");
    let lake = Arc::new(LocalLake::new(&lake_dir));
    Some(Setup { _dir: dir, lake_dir, database, python, lake })
}

fn events(hour: &str, count: usize) -> Vec<Event> {
    let start: DateTime<Utc> = hour.parse().unwrap();
    (0..count)
        .map(|i| {
            let mut e = Event::new(
                uuid::Uuid::new_v4().to_string(),
                EventType::PageView,
                start + chrono::Duration::seconds(i as i64),
                start,
                "test",
            );
            e.anonymous_id = Some("a".into());
            e
        })
        .collect()
}

async fn put(lake: &dyn Lake, hour: &str, name: &str, events: &[Event]) {
    let prefix = hour_prefix(hour.parse().unwrap());
    lake.put(&format!("{prefix}{name}.parquet"), write_events(events, ParquetSettings::default()).unwrap())
        .await
        .unwrap();
}

impl Setup {
    fn load(&self, extra: &[&str]) -> std::process::Output {
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

    fn load_ok(&self, extra: &[&str]) -> String {
        let output = self.load(extra);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    fn query(&self, sql: &str) -> serde_json::Value {
        let script = "import duckdb, json, sys\ncon = duckdb.connect(sys.argv[1], read_only=True)\nprint(json.dumps(con.execute(sys.argv[2]).fetchall(), default=str))";
        let output = Command::new(&self.python).args(["-c", script]).arg(&self.database).arg(sql).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn count_by_hour(&self) -> Vec<(String, u64)> {
        let rows = self.query("select strftime(date_trunc('hour', event_time) at time zone 'UTC', '%H'), count(*) from raw.events group by 1 order by 1");
        rows.as_array().unwrap().iter().map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_u64().unwrap())).collect()
    }
}

#[tokio::test]
async fn hours_load_once_reload_without_duplicates_and_late_files_reload_only_their_hour() {
    let Some(s) = setup() else { return };
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-1", &events("2026-11-24T10:00:00Z", 30)).await;
    put(s.lake.as_ref(), "2026-11-24T11:00:00Z", "spool-1", &events("2026-11-24T11:00:00Z", 20)).await;
    let first = s.load_ok(&[]);
    assert!(first.starts_with("loader: 2 hours loaded, 0 skipped, 50 rows"), "{first}");
    let again = s.load_ok(&[]);
    assert!(again.starts_with("loader: 0 hours loaded, 2 skipped, 0 rows"), "{again}");
    assert_eq!(s.count_by_hour(), [("10".to_owned(), 30), ("11".to_owned(), 20)]);

    // A late file arrives for hour 10: only that hour is reloaded, and nothing is doubled.
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-2", &events("2026-11-24T10:00:00Z", 5)).await;
    let dry = s.load_ok(&["--dry-run"]);
    assert!(dry.contains("load 2026-11-24T10: 2 files"), "{dry}");
    assert!(dry.contains("skip 2026-11-24T11"), "{dry}");
    let late = s.load_ok(&[]);
    assert!(late.starts_with("loader: 1 hours loaded, 1 skipped, 35 rows"), "{late}");
    assert_eq!(s.count_by_hour(), [("10".to_owned(), 35), ("11".to_owned(), 20)]);

    // A forced range reloads even unchanged hours, still without duplicates.
    let forced = s.load_ok(&["--from", "2026-11-24T11", "--to", "2026-11-24T11"]);
    assert!(forced.starts_with("loader: 1 hours loaded, 0 skipped, 20 rows"), "{forced}");
    assert_eq!(s.count_by_hour(), [("10".to_owned(), 35), ("11".to_owned(), 20)]);
    let state = s.query("select count(*) from raw._load_state");
    assert_eq!(state[0][0], 2);
    // The lake's dt=/hour= folder names are not columns.
    let folders = s.query(
        "select count(*) from information_schema.columns where table_name = 'events' and column_name in ('dt', 'hour')",
    );
    assert_eq!(folders[0][0], 0);
}

#[tokio::test]
async fn a_file_with_a_new_column_adds_it_to_the_table() {
    let Some(s) = setup() else { return };
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-1", &events("2026-11-24T10:00:00Z", 3)).await;
    s.load_ok(&[]);
    // A newer writer adds a column.
    let batch = event_model::schema::to_record_batch(&events("2026-11-24T12:00:00Z", 2)).unwrap();
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("coupon_code", DataType::Utf8, true));
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![Some("BF25"), None])));
    let wider = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut buffer = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, wider.schema(), None).unwrap();
    writer.write(&wider).unwrap();
    writer.close().unwrap();
    s.lake
        .put(&format!("{}spool-9.parquet", hour_prefix("2026-11-24T12:00:00Z".parse().unwrap())), buffer.into())
        .await
        .unwrap();
    s.load_ok(&[]);
    let rows = s.query("select count(*), count(coupon_code), max(coupon_code) from raw.events");
    assert_eq!(rows[0], serde_json::json!([5, 1, "BF25"]));
}

#[tokio::test]
async fn a_corrupt_file_fails_naming_the_hour_and_leaves_the_table_as_it_was() {
    let Some(s) = setup() else { return };
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-1", &events("2026-11-24T10:00:00Z", 7)).await;
    s.load_ok(&[]);
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-2", &events("2026-11-24T10:00:00Z", 4)).await;
    let prefix = hour_prefix("2026-11-24T10:00:00Z".parse().unwrap());
    s.lake
        .put(&format!("{prefix}spool-3.parquet"), bytes::Bytes::from_static(b"PAR1 this is not parquet"))
        .await
        .unwrap();
    let output = s.load(&[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("loading hour 2026-11-24T10"), "{stderr}");
    assert!(stderr.contains("spool-3.parquet"), "the error names the file: {stderr}");
    assert_eq!(s.count_by_hour(), [("10".to_owned(), 7)], "the failed load changed the table");
}

#[test]
fn a_gs_lake_with_duckdb_is_refused_with_what_to_do() {
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream-loader"))
        .args(["load", "--lake", "gs://bucket", "--warehouse", "duckdb"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("use --warehouse bigquery"), "{stderr}");
}
