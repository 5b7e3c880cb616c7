//! The embedded warehouse, through the real binary: day partitions loaded once and reloaded
//! without duplicates, late files however old, forced ranges, the daily job budget and a
//! backfill continued over runs, the dry-run plan, compaction's leftovers, schema additions, and
//! a corrupt file that leaves the table as it was.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::process::Command;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use batcher::lake::{Lake, hour_prefix};
use common::{Local, events, put};

fn setup() -> Option<Local> {
    common::local()
}

/// Rows per `day hour` (`24 10`) of the warehouse.
fn count_by_hour(s: &Local) -> Vec<(String, u64)> {
    let rows = s.query("select strftime(date_trunc('hour', event_time) at time zone 'UTC', '%d %H'), count(*) from raw.events group by 1 order by 1");
    rows.as_array().unwrap().iter().map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_u64().unwrap())).collect()
}

fn hours(counts: &[(&str, u64)]) -> Vec<(String, u64)> {
    counts.iter().map(|(h, n)| ((*h).to_owned(), *n)).collect()
}

#[tokio::test]
async fn days_load_once_reload_without_duplicates_and_a_late_file_reloads_only_its_day() {
    let Some(s) = setup() else { return };
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-1", &events("2026-11-24T10:00:00Z", 30)).await;
    put(s.lake.as_ref(), "2026-11-24T11:00:00Z", "spool-1", &events("2026-11-24T11:00:00Z", 20)).await;
    put(s.lake.as_ref(), "2026-11-23T05:00:00Z", "spool-0", &events("2026-11-23T05:00:00Z", 8)).await;
    let first = s.load_ok(&[]);
    assert!(first.starts_with("loader: 2 partitions loaded, 0 skipped, 0 deferred, 58 rows"), "{first}");
    let again = s.load_ok(&[]);
    assert!(again.starts_with("loader: 0 partitions loaded, 2 skipped, 0 deferred, 0 rows"), "{again}");
    assert_eq!(count_by_hour(&s), hours(&[("23 05", 8), ("24 10", 30), ("24 11", 20)]));

    // A late file arrives for hour 10: its day is reloaded as one job, and nothing is doubled.
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-2", &events("2026-11-24T10:00:00Z", 5)).await;
    let plan = s.plan(&[]);
    assert_eq!(plan["jobs"].as_array().unwrap().len(), 1, "{plan:#}");
    let job = &plan["jobs"][0];
    assert_eq!(job["partition"], "2026-11-24");
    assert_eq!(job["reason"], "changed");
    assert_eq!(job["files"], 3);
    assert_eq!(job["hours"], serde_json::json!(["2026-11-24T10", "2026-11-24T11"]));
    assert_eq!(job["changed_hours"], serde_json::json!(["2026-11-24T10"]));
    assert_eq!(plan["up_to_date"], 1);
    assert_eq!(
        plan["layout"],
        serde_json::json!({"partitioning": "DAY", "field": "event_time", "clustering": ["event_type", "category_code", "product_id"]})
    );
    let late = s.load_ok(&[]);
    assert!(late.starts_with("loader: 1 partitions loaded, 1 skipped, 0 deferred, 55 rows"), "{late}");
    assert_eq!(count_by_hour(&s), hours(&[("23 05", 8), ("24 10", 35), ("24 11", 20)]));

    // A forced range reloads an unchanged day, still without duplicates.
    let forced = s.load_ok(&["--from", "2026-11-23", "--to", "2026-11-23T23"]);
    assert!(forced.starts_with("loader: 1 partitions loaded, 0 skipped, 0 deferred, 8 rows"), "{forced}");
    assert_eq!(count_by_hour(&s), hours(&[("23 05", 8), ("24 10", 35), ("24 11", 20)]));
    let loads =
        s.query("select strftime(partition_date, '%Y-%m-%d'), row_count from raw._partition_loads order by loaded_at");
    assert_eq!(
        loads,
        serde_json::json!([["2026-11-24", 50], ["2026-11-23", 8], ["2026-11-24", 55], ["2026-11-23", 8]])
    );
    let jobs = s.query("select count(*), count(distinct job_id) from raw._load_jobs");
    assert_eq!(jobs[0], serde_json::json!([4, 4]));
    let runs = s.query("select outcome, partitions_loaded from raw._load_runs order by started_at");
    assert_eq!(runs, serde_json::json!([["complete", 2], ["complete", 0], ["complete", 1], ["complete", 1]]));
    // The lake's dt=/hour= folder names are not columns.
    let folders = s.query(
        "select count(*) from information_schema.columns where table_name = 'events' and column_name in ('dt', 'hour')",
    );
    assert_eq!(folders[0][0], 0);
}

#[tokio::test]
async fn a_late_file_for_a_day_weeks_old_is_loaded_by_the_next_run_without_any_window() {
    let Some(s) = setup() else { return };
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-1", &events("2026-11-24T10:00:00Z", 4)).await;
    s.load_ok(&[]);
    // A phone that was offline for three weeks finally sends its queue.
    put(s.lake.as_ref(), "2026-11-03T19:00:00Z", "spool-7", &events("2026-11-03T19:00:00Z", 3)).await;
    let late = s.load_ok(&[]);
    assert!(late.starts_with("loader: 1 partitions loaded, 1 skipped"), "{late}");
    assert_eq!(count_by_hour(&s), hours(&[("03 19", 3), ("24 10", 4)]));
}

#[tokio::test]
async fn a_backfill_larger_than_the_budget_loads_what_fits_newest_first_and_the_next_run_continues() {
    let Some(s) = setup() else { return };
    for day in 1..=5 {
        let hour = format!("2019-10-{day:02}T08:00:00Z");
        put(s.lake.as_ref(), &hour, "rees46", &events(&hour, day)).await;
    }
    let plan = s.plan(&["--daily-job-budget", "2"]);
    assert_eq!(plan["budget"], serde_json::json!({"daily_jobs": 2, "used_last_24h": 0, "available": 2}));
    assert_eq!(plan["this_run"]["jobs"], 2);
    assert_eq!(
        plan["totals"],
        serde_json::json!({"jobs": 5, "partitions": 5, "hours": 5, "files": 5, "bytes": plan["totals"]["bytes"]})
    );
    assert_eq!(plan["runs_needed"], 3);
    assert_eq!(plan["deferred"].as_array().unwrap().len(), 3);

    let output = s.load(&["--daily-job-budget", "2"]);
    assert!(output.status.success(), "a budget stop is not a failure");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stdout.starts_with("loader: 2 partitions loaded, 0 skipped, 3 deferred, 9 rows"), "{stdout}");
    assert!(stderr.contains("3 of 5 changed partitions are left for the next run"), "{stderr}");
    assert_eq!(count_by_hour(&s), hours(&[("04 08", 4), ("05 08", 5)]), "newest days first");

    // The two jobs of the last 24 hours still count: a second run with the same budget waits.
    let waiting = s.load_ok(&["--daily-job-budget", "2"]);
    assert!(waiting.starts_with("loader: 0 partitions loaded, 2 skipped, 3 deferred"), "{waiting}");
    // With room for two more, the next run continues where the first stopped.
    let next = s.load_ok(&["--daily-job-budget", "4"]);
    assert!(next.starts_with("loader: 2 partitions loaded, 2 skipped, 1 deferred"), "{next}");
    let rest = s.load_ok(&[]);
    assert!(rest.starts_with("loader: 1 partitions loaded, 4 skipped, 0 deferred, 1 rows"), "{rest}");
    assert_eq!(count_by_hour(&s).len(), 5);
    let runs =
        s.query("select outcome, partitions_loaded, partitions_deferred from raw._load_runs order by started_at");
    assert_eq!(
        runs,
        serde_json::json!([
            ["budget_exhausted", 2, 3],
            ["budget_exhausted", 0, 3],
            ["budget_exhausted", 2, 1],
            ["complete", 1, 0]
        ])
    );
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_does_not_create_the_warehouse() {
    let Some(s) = setup() else { return };
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-1", &events("2026-11-24T10:00:00Z", 3)).await;
    let plan = s.plan(&[]);
    assert_eq!(plan["jobs"][0]["reason"], "new");
    assert_eq!(plan["runs_needed"], 1);
    assert_eq!(plan["budget"]["daily_jobs"], serde_json::Value::Null, "no budget by default for DuckDB");
    assert!(!s.database.exists(), "a dry run created the database file");
    s.load_ok(&[]);
    let plan = s.plan(&[]);
    assert!(plan["jobs"].as_array().unwrap().is_empty());
    assert_eq!(plan["up_to_date"], 1);
}

#[tokio::test]
async fn inputs_a_killed_compaction_left_beside_its_day_file_are_not_loaded_twice() {
    let Some(s) = setup() else { return };
    let day_events = events("2026-11-24T10:00:00Z", 6);
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-1", &day_events[..3]).await;
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-2", &day_events[3..]).await;
    let day: chrono::NaiveDate = "2026-11-24".parse().unwrap();
    batcher::compact::compact_day(s.lake.as_ref(), day, batcher::compact::CompactSettings::default()).await.unwrap();
    // The inputs come back, as if the run had been killed before deleting them.
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-1", &day_events[..3]).await;
    put(s.lake.as_ref(), "2026-11-24T10:00:00Z", "spool-2", &day_events[3..]).await;
    let plan = s.plan(&[]);
    assert_eq!(plan["jobs"][0]["files"], 1);
    assert_eq!(plan["jobs"][0]["superseded_files"], 2);
    assert_eq!(
        plan["jobs"][0]["hours"],
        serde_json::json!(["2026-11-24T10"]),
        "the day file's hours, from its manifest"
    );
    s.load_ok(&[]);
    let rows = s.query("select count(*), count(distinct event_id) from raw.events");
    assert_eq!(rows[0], serde_json::json!([6, 6]));
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
async fn a_corrupt_file_fails_naming_the_day_and_leaves_the_table_as_it_was() {
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
    assert!(stderr.contains("loading 2026-11-24 into duckdb"), "{stderr}");
    assert!(stderr.contains("spool-3.parquet"), "the error names the file: {stderr}");
    assert_eq!(count_by_hour(&s), hours(&[("24 10", 7)]), "the failed load changed the table");
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

#[tokio::test]
async fn days_older_than_the_partition_expiration_are_not_loaded() {
    let Some(s) = setup() else { return };
    let recent = (chrono::Utc::now() - chrono::Duration::days(2)).format("%Y-%m-%dT10:00:00Z").to_string();
    let old = (chrono::Utc::now() - chrono::Duration::days(40)).format("%Y-%m-%dT10:00:00Z").to_string();
    put(s.lake.as_ref(), &recent, "spool-1", &events(&recent, 3)).await;
    put(s.lake.as_ref(), &old, "spool-1", &events(&old, 2)).await;
    let plan = s.plan(&["--partition-expiration-days", "30"]);
    assert_eq!(plan["expired"], 1, "{plan:#}");
    assert_eq!(plan["jobs"].as_array().unwrap().len(), 1);
    let loaded = s.load_ok(&["--partition-expiration-days", "30"]);
    assert!(loaded.starts_with("loader: 1 partitions loaded, 0 skipped, 0 deferred, 3 rows"), "{loaded}");
}

/// From any working directory, with no path given: the lake and the warehouse come from the
/// state home (CLICKSTREAM_HOME) and DuckDB runs in the checkout's project venv, found from the
/// binary, not the working directory (it used to look for `.venv/bin/python` in the latter).
#[tokio::test]
async fn the_loader_runs_from_any_directory_with_no_paths_given() {
    if setup().is_none() {
        return; // skipped: no project venv
    }
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let lake = batcher::lake::LocalLake::new(home.path().join("lake"));
    put(&lake, "2026-11-24T10:00:00Z", "spool-1", &events("2026-11-24T10:00:00Z", 7)).await;
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream-loader"))
        .arg("load")
        .current_dir(elsewhere.path())
        .env("CLICKSTREAM_HOME", home.path())
        .env_remove("CLICKSTREAM_LAKE")
        .env_remove("CLICKSTREAM_DUCKDB_PATH")
        .env_remove("CLICKSTREAM_DUCKDB_PYTHON")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("loader: 1 partitions loaded, 0 skipped, 0 deferred, 7 rows"), "{stdout}");
    assert!(home.path().join("warehouse.duckdb").is_file(), "the warehouse is in the state home");
    assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none(), "nothing written to the working directory");
}
