//! The loader over long stretches of operation, on the embedded warehouse through the real
//! binary: the jobs a day of hourly runs with late data spends, the plan of a REES46-sized
//! seven-month backfill, and a six-month sparse log that compaction leaves at one file per day.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use batcher::compact::{CompactSettings, compact_day, compact_hour};
use batcher::lake::{Lake, hour_prefix};
use batcher::parquet_io::{ParquetSettings, write_events};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use event_model::{Event, EventType};
use rand::{Rng, SeedableRng};

fn setup() -> Option<common::Local> {
    common::local()
}

fn events_at(times: &[DateTime<Utc>]) -> Vec<Event> {
    times
        .iter()
        .map(|time| {
            let mut e = Event::new(uuid::Uuid::new_v4().to_string(), EventType::PageView, *time, *time, "test");
            e.anonymous_id = Some("a".into());
            e
        })
        .collect()
}

/// Writes one file of `count` events in `hour`, as the batcher does for one spool segment.
async fn put_hour(lake: &dyn Lake, hour: DateTime<Utc>, name: &str, count: usize) {
    let times: Vec<DateTime<Utc>> = (0..count).map(|i| hour + Duration::seconds((i * 7 % 3600) as i64)).collect();
    let path = format!("{}{name}.parquet", hour_prefix(hour));
    lake.put(&path, write_events(&events_at(&times), ParquetSettings::default()).unwrap()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_operation_with_late_data_spends_one_job_per_changed_day() {
    let Some(s) = setup() else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let start: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().unwrap();
    let mut jobs_per_day = Vec::new();
    let mut late_files_per_day = Vec::new();
    for day in 0..2 {
        let before = if s.database.exists() {
            s.query("select count(*) from raw._load_jobs")[0][0].as_u64().unwrap()
        } else {
            0
        };
        let mut late_files = 0u64;
        for hh in 0..24 {
            let now = start + Duration::hours(day * 24 + hh);
            // The hour that just closed, as the batcher writes it over the hour.
            put_hour(s.lake.as_ref(), now - Duration::hours(1), &format!("spool-{day}-{hh}-a"), 40).await;
            put_hour(s.lake.as_ref(), now - Duration::hours(1), &format!("spool-{day}-{hh}-b"), 25).await;
            // Every few hours a phone sends its offline queue: events of a day 1 to 20 days back.
            if rng.random_ratio(1, 4) {
                let back = Duration::days(rng.random_range(1..=20)) + Duration::hours(rng.random_range(0..24));
                let late_hour = now - back;
                put_hour(s.lake.as_ref(), late_hour, &format!("late-{day}-{hh}"), 3).await;
                late_files += 1;
            }
            // Compaction as the hourly flow runs it: the hour before, and yesterday once closed.
            compact_hour(s.lake.as_ref(), now - Duration::hours(2), ParquetSettings::default()).await.unwrap();
            if hh == 1 {
                compact_day(s.lake.as_ref(), (now - Duration::days(1)).date_naive(), CompactSettings::default())
                    .await
                    .unwrap();
            }
            s.load_ok(&[]);
        }
        let after = s.query("select count(*) from raw._load_jobs")[0][0].as_u64().unwrap();
        jobs_per_day.push(after - before);
        late_files_per_day.push(late_files);
    }
    eprintln!("load jobs per simulated day: {jobs_per_day:?} (late files: {late_files_per_day:?})");
    // Each of the 24 runs reloads the day it writes to, however many files changed in it; a
    // late file adds one job for its day, and the day before closes with at most two (its last
    // hour, its compaction). Far below BigQuery's 1,500 a day.
    for (jobs, late) in jobs_per_day.iter().zip(&late_files_per_day) {
        assert!(*jobs >= 24 && *jobs <= 24 + late + 2, "{jobs} jobs with {late} late files");
    }
    // Every event is in the warehouse exactly once.
    let lake_rows = s.query(&format!(
        "select count(*), count(distinct event_id) from read_parquet('{}/events/*/*/*.parquet')",
        s.lake_dir.display()
    ));
    let warehouse_rows = s.query("select count(*), count(distinct event_id) from raw.events");
    assert_eq!(warehouse_rows, lake_rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rees46_sized_seven_month_backfill_is_one_job_per_day_and_fits_one_run() {
    let Some(s) = setup() else { return };
    // REES46's multi-category store export: October 2019 to April 2020, every hour has events.
    let first: DateTime<Utc> = "2019-10-01T00:00:00Z".parse().unwrap();
    let last: DateTime<Utc> = "2020-04-30T23:00:00Z".parse().unwrap();
    let mut hour = first;
    let mut hours = 0;
    let data = write_events(&events_at(&[first]), ParquetSettings::default()).unwrap();
    while hour <= last {
        // The plan reads only names and sizes: one small file per hour stands for the export.
        let path = s.lake_dir.join(format!("{}rees46-0.parquet", hour_prefix(hour)));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &data).unwrap();
        hour += Duration::hours(1);
        hours += 1;
    }
    let plan: serde_json::Value =
        serde_json::from_str(&s.load_ok(&["--dry-run", "--daily-job-budget", "1000"])).unwrap();
    eprintln!(
        "REES46-sized backfill plan: totals {} this run {} runs needed {} budget {}",
        plan["totals"], plan["this_run"], plan["runs_needed"], plan["budget"]
    );
    assert_eq!(hours, 5_112);
    assert_eq!(plan["totals"]["jobs"], 213, "one job per day, not per hour");
    assert_eq!(plan["totals"]["partitions"], 213);
    assert_eq!(plan["totals"]["hours"], 5_112);
    assert_eq!(plan["totals"]["files"], 5_112);
    assert_eq!(plan["this_run"]["jobs"], 213);
    assert_eq!(plan["runs_needed"], 1);
    assert_eq!(plan["jobs"][0]["partition"], "2020-04-30", "newest first");
    assert_eq!(plan["jobs"][212]["partition"], "2019-10-01");
    // With a smaller budget the same backfill spreads over runs, and says so before starting.
    let small: serde_json::Value =
        serde_json::from_str(&s.load_ok(&["--dry-run", "--daily-job-budget", "100"])).unwrap();
    assert_eq!(small["this_run"]["jobs"], 100);
    assert_eq!(small["deferred"].as_array().unwrap().len(), 113);
    assert_eq!(small["runs_needed"], 3);
    assert!(!s.database.exists(), "a dry run changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_six_month_sparse_log_ends_at_one_file_per_day_and_loads_quickly() {
    let Some(s) = setup() else { return };
    // A small shop's six months: 32,283 events in 2,713 of its 4,368 hours.
    let mut rng = rand::rngs::StdRng::seed_from_u64(32_283);
    let start: DateTime<Utc> = "2025-05-01T00:00:00Z".parse().unwrap();
    let mut all_hours: Vec<i64> = (0..182 * 24).collect();
    for i in (1..all_hours.len()).rev() {
        all_hours.swap(i, rng.random_range(0..=i));
    }
    let mut busy: Vec<i64> = all_hours[..2_713].to_vec();
    busy.sort_unstable();
    // 11 or 12 events an hour: 2,540 hours of 12 and 173 of 11.
    let (base, extra) = (32_283 / busy.len(), 32_283 % busy.len());
    for (index, offset) in busy.iter().enumerate() {
        put_hour(s.lake.as_ref(), start + Duration::hours(*offset), "spool-1", base + usize::from(index < extra)).await;
    }
    let days: BTreeSet<NaiveDate> = busy.iter().map(|o| (start + Duration::hours(*o)).date_naive()).collect();
    let before = s.lake.list("events/").await.unwrap().len();
    for day in &days {
        compact_day(s.lake.as_ref(), *day, CompactSettings::default()).await.unwrap();
    }
    let files: Vec<String> =
        s.lake.list("events/").await.unwrap().into_iter().map(|o| o.path).filter(|p| p.ends_with(".parquet")).collect();
    let file_days: BTreeSet<NaiveDate> = files.iter().filter_map(|p| batcher::layout::day_of_path(p)).collect();
    assert_eq!(before, 2_713);
    assert_eq!(files.len(), days.len(), "at most one file per day with data");
    assert_eq!(file_days, days);
    let started = Instant::now();
    let summary = s.load_ok(&[]);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("six-month sparse log: {before} hour files → {} day files; {summary}", files.len());
    assert!(
        summary.starts_with(&format!("loader: {} partitions loaded, 0 skipped, 0 deferred, 32283 rows", days.len())),
        "{summary}"
    );
    assert_eq!(s.query("select count(distinct event_id) from raw.events")[0][0], 32_283);
    // One small transaction per day: seconds, not the minute and more that one per hour took.
    assert!(seconds < 60.0, "loading took {seconds:.1} s");
}
