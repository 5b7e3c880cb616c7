//! Day compaction: a sparse closed day becomes one file, a busy one keeps a file per hour, late
//! files are merged into a new day file, a crash mid-way leaves inputs the loader can tell apart,
//! and independent Hive-partitioned readers still read every event exactly once.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use batcher::compact::{CompactSettings, DayCompaction, MANIFEST, Manifest, closed_work, compact_day, compact_hour};
use batcher::lake::{Lake, LocalLake, hour_prefix};
use batcher::layout::{day_file_prefix, is_day_file};
use batcher::parquet_io::{ParquetSettings, ParsedFile, write_events};
use chrono::{DateTime, NaiveDate, Utc};
use common::{event, lake_contents, uuid};

const DAY: &str = "2026-11-24";

fn day() -> NaiveDate {
    DAY.parse().unwrap()
}

/// Writes `ids` as one file of the hour `hh` of [`DAY`], returning the path.
async fn put_hour_file(lake: &dyn Lake, hh: u32, name: &str, ids: &[String]) -> String {
    let hour: DateTime<Utc> = format!("{DAY}T{hh:02}:00:00Z").parse().unwrap();
    let events: Vec<_> = ids.iter().map(|id| event(id, &format!("{DAY}T{hh:02}:17:00Z"))).collect();
    let path = format!("{}{name}.parquet", hour_prefix(hour));
    lake.put(&path, write_events(&events, ParquetSettings::default()).unwrap()).await.unwrap();
    path
}

fn ids(count: usize) -> Vec<String> {
    (0..count).map(|_| uuid()).collect()
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

#[tokio::test]
async fn a_sparse_closed_day_becomes_one_file_in_the_day_folder() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let (a, b, c) = (ids(3), ids(2), ids(4));
    put_hour_file(&lake, 3, "spool-1", &a).await;
    put_hour_file(&lake, 3, "spool-2", &b).await;
    // An hour compacted earlier, with its manifest.
    put_hour_file(&lake, 21, "spool-3", &c).await;
    compact_hour(&lake, format!("{DAY}T21:00:00Z").parse().unwrap(), ParquetSettings::default()).await.unwrap();

    let DayCompaction::Day(manifest) = compact_day(&lake, day(), CompactSettings::default()).await.unwrap() else {
        panic!("a small day becomes one file");
    };
    assert_eq!(manifest.day.as_deref(), Some(DAY));
    assert_eq!(manifest.hours, vec![format!("{DAY}T03"), format!("{DAY}T21")]);
    assert_eq!(manifest.rows, 9);
    assert_eq!(manifest.inputs.len(), 3);
    let files = lake_contents(&lake).await;
    assert_eq!(files.len(), 1, "{files:?}");
    let (path, stored) = files.into_iter().next().unwrap();
    assert!(is_day_file(&path) && path.starts_with(&day_file_prefix(day())), "{path}");
    assert_eq!(sorted(stored), sorted([a, b, c].concat()));
    // Only the day's manifest is left beside the file; the hour manifests went with their hours.
    let all: Vec<String> = lake.list("events/").await.unwrap().into_iter().map(|o| o.path).collect();
    assert_eq!(all, vec![format!("{}{MANIFEST}", day_file_prefix(day())), path.clone()]);
    let on_disk: Manifest =
        serde_json::from_slice(&lake.get(&format!("{}{MANIFEST}", day_file_prefix(day()))).await.unwrap()).unwrap();
    assert_eq!(on_disk, manifest);

    assert_eq!(compact_day(&lake, day(), CompactSettings::default()).await.unwrap(), DayCompaction::Nothing);
}

#[tokio::test]
async fn a_busy_day_keeps_one_compacted_file_per_hour() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    for hh in [1, 2] {
        put_hour_file(&lake, hh, "spool-1", &ids(50)).await;
        put_hour_file(&lake, hh, "spool-2", &ids(50)).await;
    }
    let settings = CompactSettings { day_file_max_bytes: 1024, ..CompactSettings::default() };
    let DayCompaction::Hours(manifests) = compact_day(&lake, day(), settings).await.unwrap() else {
        panic!("a day above the limit is compacted hour by hour");
    };
    assert_eq!(manifests.len(), 2);
    let files = lake_contents(&lake).await;
    assert_eq!(files.len(), 2);
    assert!(files.keys().all(|p| !is_day_file(p) && p.contains("/compacted-")), "{files:?}");
    assert_eq!(files.values().map(Vec::len).sum::<usize>(), 200);
    assert_eq!(compact_day(&lake, day(), settings).await.unwrap(), DayCompaction::Nothing);
}

#[tokio::test]
async fn a_late_file_for_a_compacted_day_is_merged_into_a_new_day_file_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let first = ids(5);
    put_hour_file(&lake, 8, "spool-1", &first).await;
    put_hour_file(&lake, 9, "spool-2", &ids(1)).await;
    let DayCompaction::Day(old) = compact_day(&lake, day(), CompactSettings::default()).await.unwrap() else {
        panic!("compacted")
    };
    // Late: one new event and a redelivered copy of one already stored.
    let late = vec![uuid(), first[0].clone()];
    put_hour_file(&lake, 23, "pubsub-9", &late).await;
    let DayCompaction::Day(new) = compact_day(&lake, day(), CompactSettings::default()).await.unwrap() else {
        panic!("merged again")
    };
    assert_ne!(new.file, old.file, "a new name, so the loader sees the day changed");
    assert!(new.inputs.contains(&old.file));
    assert_eq!(new.rows, 7);
    assert_eq!(new.duplicates_removed, 1);
    assert_eq!(new.hours, vec![format!("{DAY}T08"), format!("{DAY}T09"), format!("{DAY}T23")]);
    assert_eq!(lake_contents(&lake).await.len(), 1);
}

#[tokio::test]
async fn inputs_left_beside_a_day_file_by_a_crash_are_named_as_superseded() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let a = put_hour_file(&lake, 4, "spool-1", &ids(3)).await;
    let b = put_hour_file(&lake, 5, "spool-2", &ids(3)).await;
    let DayCompaction::Day(manifest) = compact_day(&lake, day(), CompactSettings::default()).await.unwrap() else {
        panic!("compacted")
    };
    // What a run killed before deleting its inputs leaves: the inputs back beside the day file.
    put_hour_file(&lake, 4, "spool-1", &ids(3)).await;
    put_hour_file(&lake, 5, "spool-2", &ids(3)).await;
    let late = put_hour_file(&lake, 6, "spool-3", &ids(1)).await;
    let objects = lake.list("events/").await.unwrap();
    let superseded = batcher::compact::superseded_inputs(&lake, &objects).await.unwrap();
    assert_eq!(superseded.into_iter().collect::<Vec<_>>(), vec![a, b], "the late file is not superseded");
    assert!(objects.iter().any(|o| o.path == manifest.file) && objects.iter().any(|o| o.path == late));
    // A clean day reads no manifest and supersedes nothing.
    let clean = tempfile::tempdir().unwrap();
    let clean_lake = LocalLake::new(clean.path());
    put_hour_file(&clean_lake, 4, "spool-1", &ids(2)).await;
    compact_day(&clean_lake, day(), CompactSettings::default()).await.unwrap();
    let objects = clean_lake.list("events/").await.unwrap();
    assert!(batcher::compact::superseded_inputs(&clean_lake, &objects).await.unwrap().is_empty());
}

#[tokio::test]
async fn closed_days_are_compacted_as_days_and_the_open_days_hours_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    put_hour_file(&lake, 10, "old", &ids(1)).await;
    let now = Utc::now();
    let open = vec![event(&uuid(), &now.to_rfc3339())];
    lake.put(&format!("{}open.parquet", hour_prefix(now)), write_events(&open, ParquetSettings::default()).unwrap())
        .await
        .unwrap();
    let (days, hours) = closed_work(&lake, chrono::Duration::hours(1)).await.unwrap();
    assert_eq!(days, vec![day()]);
    assert!(hours.is_empty(), "the current hour is still open: {hours:?}");
}

#[test]
fn hive_partitioned_readers_see_every_event_once_and_a_null_hour_for_day_files() {
    let Some(python) = common::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let compacted_day = ids(6);
    let open_day = ids(4);
    runtime.block_on(async {
        put_hour_file(&lake, 1, "spool-1", &compacted_day[..3]).await;
        put_hour_file(&lake, 2, "spool-2", &compacted_day[3..]).await;
        compact_day(&lake, day(), CompactSettings::default()).await.unwrap();
        let hour: DateTime<Utc> = "2026-11-25T07:00:00Z".parse().unwrap();
        let events: Vec<_> = open_day.iter().map(|id| event(id, "2026-11-25T07:30:00Z")).collect();
        lake.put(
            &format!("{}spool-3.parquet", hour_prefix(hour)),
            write_events(&events, ParquetSettings::default()).unwrap(),
        )
        .await
        .unwrap();
    });
    let glob = format!("{}/events/*/*/*.parquet", dir.path().display());
    let rows = common::duckdb_query(
        &python,
        &format!(
            "select dt::varchar, hour::varchar, count(*), count(distinct event_id) from read_parquet('{glob}', hive_partitioning = true) group by all order by 1"
        ),
    );
    assert_eq!(rows, serde_json::json!([["2026-11-24", null, 6, 6], ["2026-11-25", "07", 4, 4]]));
}

#[tokio::test]
async fn hours_that_are_one_file_are_copied_row_group_by_row_group_in_hour_order() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    // Row groups of 2 rows: re-encoding would give one row group per hour instead.
    let small_groups = ParquetSettings { row_group_rows: 2, ..ParquetSettings::default() };
    let mut expected = Vec::new();
    let mut input_groups = 0;
    for (hh, count) in [(14, 5), (2, 4), (7, 1)] {
        let hour: DateTime<Utc> = format!("{DAY}T{hh:02}:00:00Z").parse().unwrap();
        let ids = ids(count);
        let events: Vec<_> = ids.iter().map(|id| event(id, &format!("{DAY}T{hh:02}:40:00Z"))).collect();
        let data = write_events(&events, small_groups).unwrap();
        input_groups += ParsedFile::parse(data.clone()).unwrap().row_groups();
        lake.put(&format!("{}spool-{hh}.parquet", hour_prefix(hour)), data).await.unwrap();
        expected.extend(ids);
    }
    let DayCompaction::Day(manifest) = compact_day(&lake, day(), CompactSettings::default()).await.unwrap() else {
        panic!("a small day becomes one file");
    };
    assert_eq!((manifest.rows, manifest.duplicates_removed), (10, 0));
    let files = lake_contents(&lake).await;
    let (path, rows) = files.iter().next().unwrap();
    assert!(is_day_file(path), "{path}");
    assert_eq!(sorted(rows.clone()), sorted(expected));
    let stored = ParsedFile::parse(lake.get(path).await.unwrap()).unwrap();
    assert_eq!(stored.row_groups(), input_groups, "every input row group copied as it was");
    let hours: Vec<i64> =
        (0..stored.row_groups()).map(|g| stored.row_group_hour(g).expect("one hour per row group")).collect();
    assert!(hours.windows(2).all(|pair| pair[0] <= pair[1]), "hours in order: {hours:?}");
    let day_start = format!("{DAY}T00:00:00Z").parse::<DateTime<Utc>>().unwrap().timestamp_micros();
    let distinct: std::collections::BTreeSet<i64> = hours.iter().map(|h| (h - day_start) / 3_600_000_000).collect();
    assert_eq!(distinct.into_iter().collect::<Vec<_>>(), vec![2, 7, 14]);
}

#[tokio::test]
async fn an_hour_of_several_files_copies_their_large_row_groups_and_re_encodes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LocalLake::new(dir.path());
    // Row groups of 8 rows: a group of at least 2 rows (a quarter) is copied when clean.
    let settings = ParquetSettings { row_group_rows: 8, ..ParquetSettings::default() };
    let hour: DateTime<Utc> = format!("{DAY}T05:00:00Z").parse().unwrap();
    let (a, b) = (ids(16), ids(8));
    let (c, d) = (ids(1), ids(1));
    let put = |name: &'static str, events: Vec<event_model::Event>| {
        let lake = &lake;
        async move {
            lake.put(&format!("{}{name}.parquet", hour_prefix(hour)), write_events(&events, settings).unwrap())
                .await
                .unwrap();
        }
    };
    let at = format!("{DAY}T05:10:00Z");
    let events = |ids: &[String]| ids.iter().map(|id| event(id, &at)).collect::<Vec<_>>();
    put("spool-a", events(&a)).await; // two clean groups of 8: copied
    // b's group holds a later copy of a[0]: decoded, that copy dropped, the rest re-encoded
    let mut with_copy = events(&b);
    let mut late = event(&a[0], &at);
    late.received_at = with_copy[0].received_at + chrono::TimeDelta::hours(1);
    with_copy[7] = late;
    put("spool-b", with_copy).await;
    put("spool-c", events(&c)).await; // one-row files: coalesced, not copied one by one
    put("spool-d", events(&d)).await;

    let manifest = compact_hour(&lake, hour, settings).await.unwrap().expect("work to do");
    let expected: Vec<String> = [&a[..], &b[..7], &c[..], &d[..]].concat();
    assert_eq!((manifest.rows, manifest.duplicates_removed), (expected.len() as u64, 1));
    let files = lake_contents(&lake).await;
    let (path, rows) = files.iter().next().unwrap();
    assert_eq!(sorted(rows.clone()), sorted(expected));
    let stored = ParsedFile::parse(lake.get(path).await.unwrap()).unwrap();
    let sizes: Vec<usize> = (0..stored.row_groups()).map(|g| stored.row_group_rows(g)).collect();
    // a's two groups copied, then b's 7 clean rows with c and d encoded together
    assert_eq!(sizes, vec![8, 8, 8, 1], "row groups: {sizes:?}");
}
