//! Compaction (merge, idempotence, crash between write and delete) and the REES46 backfill.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::process::Command;
use std::sync::Arc;

use batcher::compact::{MANIFEST, Manifest, closed_hours, compact_hour};
use batcher::lake::{Lake, LocalLake};
use batcher::parquet_io::{ParquetSettings, write_events};
use batcher::writer::LakeWriter;
use chrono::{DateTime, Utc};
use common::{event, lake_contents, uuid};

const HOUR: &str = "2026-11-24T10:00:00Z";
const PREFIX: &str = "events/dt=2026-11-24/hour=10/";

async fn put_file(lake: &dyn Lake, name: &str, ids: &[String]) {
    let events: Vec<_> = ids.iter().map(|id| event(id, "2026-11-24T10:30:00Z")).collect();
    lake.put(&format!("{PREFIX}{name}.parquet"), write_events(&events, ParquetSettings::default()).unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn compaction_merges_an_hour_into_one_file_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let ids: Vec<String> = (0..30).map(|_| uuid()).collect();
    put_file(&lake, "spool-1", &ids[..10]).await;
    put_file(&lake, "spool-2", &ids[10..20]).await;
    // A Pub/Sub redelivery put five events into a second file too.
    let mut redelivered = ids[20..30].to_vec();
    redelivered.extend_from_slice(&ids[..5]);
    put_file(&lake, "pubsub-3", &redelivered).await;
    let hour: DateTime<Utc> = HOUR.parse().unwrap();

    let manifest = compact_hour(&lake, hour, ParquetSettings::default()).await.unwrap().expect("work to do");
    assert_eq!(manifest.inputs.len(), 3);
    assert_eq!(manifest.rows, 30);
    assert_eq!(manifest.duplicates_removed, 5);
    assert!(manifest.bytes > 0);
    let files = lake_contents(&lake).await;
    assert_eq!(files.len(), 1, "{files:?}");
    let (path, merged) = files.into_iter().next().unwrap();
    assert_eq!(path, manifest.file);
    let mut merged_sorted = merged.clone();
    merged_sorted.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(merged_sorted, want);
    let on_disk: Manifest = serde_json::from_slice(&lake.get(&format!("{PREFIX}{MANIFEST}")).await.unwrap()).unwrap();
    assert_eq!(on_disk, manifest);

    assert!(
        compact_hour(&lake, hour, ParquetSettings::default()).await.unwrap().is_none(),
        "a second run does nothing"
    );
    assert_eq!(lake_contents(&lake).await.len(), 1);
}

#[tokio::test]
async fn a_crash_after_writing_the_compacted_file_is_repaired_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let ids: Vec<String> = (0..12).map(|_| uuid()).collect();
    put_file(&lake, "spool-1", &ids[..6]).await;
    put_file(&lake, "spool-2", &ids[6..]).await;
    // What a run killed before deleting its inputs leaves: the merged file next to them.
    put_file(&lake, "compacted-0000000000000000", &ids).await;
    // Late data arrives for the hour in the meantime.
    let late = uuid();
    put_file(&lake, "spool-3", std::slice::from_ref(&late)).await;
    let manifest = compact_hour(&lake, HOUR.parse().unwrap(), ParquetSettings::default()).await.unwrap().unwrap();
    assert_eq!(manifest.rows, 13);
    assert_eq!(manifest.duplicates_removed, 12);
    let files = lake_contents(&lake).await;
    assert_eq!(files.len(), 1);
    assert!(files.values().next().unwrap().contains(&late));
}

#[tokio::test]
async fn only_closed_hours_are_compacted_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    put_file(&lake, "old", &[uuid()]).await;
    let now = Utc::now();
    let current = batcher::lake::hour_prefix(now);
    let events = vec![event(&uuid(), &now.to_rfc3339())];
    lake.put(&format!("{current}open.parquet"), write_events(&events, ParquetSettings::default()).unwrap())
        .await
        .unwrap();
    let hours = closed_hours(&lake, chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(hours, vec![HOUR.parse::<DateTime<Utc>>().unwrap()]);
}

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rees46-sample.csv")
}

#[tokio::test]
async fn a_rees46_export_is_backfilled_into_hour_folders_and_rerunning_it_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Arc::new(LocalLake::new(dir.path()));
    let writer = LakeWriter::new(lake.clone(), ParquetSettings::default());
    let summary = batcher::backfill::run(&[fixture()], "rees46", &writer, 4, false).await.unwrap();
    assert_eq!(summary.events, 9, "nine mappable rows");
    assert_eq!(summary.dead_lettered, 1, "the wishlist row is dead-lettered");
    let first = lake_contents(lake.as_ref()).await;
    let total: usize = first.values().map(Vec::len).sum();
    assert_eq!(total, 9);
    assert!(first.keys().any(|p| p.starts_with("events/dt=2019-10-01/hour=00/")));
    assert!(first.keys().any(|p| p.starts_with("events/dt=2019-10-01/hour=01/")));

    batcher::backfill::run(&[fixture()], "rees46", &writer, 4, false).await.unwrap();
    let second = lake_contents(lake.as_ref()).await;
    assert_eq!(first, second, "a re-run writes the same objects with the same ids");
}

#[test]
fn the_backfill_command_reports_a_one_line_summary_and_a_wrong_header_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream-batcher"))
        .args(["backfill", "--csv"])
        .arg(fixture())
        .arg("--lake")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("batcher backfill: 9 events,"), "{stdout}");
    assert!(stdout.contains("1 dead-lettered"), "{stdout}");

    let wrong = dir.path().join("wrong.csv");
    std::fs::write(&wrong, "time,type\n1,2\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream-batcher"))
        .args(["backfill", "--csv"])
        .arg(&wrong)
        .arg("--lake")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("a REES46 export starts with event_time,event_type"), "{stderr}");
}
