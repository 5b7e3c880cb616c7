//! Spool → local lake: hourly layout, late events in their own hour, dead letters, exactly once
//! across SIGKILLs of the batcher binary, and an independent reader (DuckDB) agreeing with us.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use batcher::lake::{Lake, LocalLake};
use batcher::parquet_io::ParquetSettings;
use batcher::spool_source::{RunBounds, drain};
use batcher::writer::LakeWriter;
use common::{event, lake_contents, uuid};
use event_model::{Event, FailedEvent};
use queue::EventSink;
use queue::spool::{EVENTS_STREAM, SpoolSink, SpoolWriter, SpoolWriterConfig, stream_dir};
use rand::Rng;

fn spool_config(dir: &std::path::Path) -> SpoolWriterConfig {
    SpoolWriterConfig { max_segment_bytes: 4 * 1024, ..SpoolWriterConfig::new(dir) }
}

#[tokio::test]
async fn events_land_in_the_hour_of_their_event_time_and_late_ones_in_their_own_hour() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let sink = SpoolSink::open(spool_config(&spool)).unwrap();
    let on_time: Vec<_> = (0..50).map(|_| event(&uuid(), "2026-11-24T10:15:00Z")).collect();
    // Arrives with today's traffic but happened three hours earlier.
    let late = event(&uuid(), "2026-11-24T07:59:59.999Z");
    let mut all = on_time.clone();
    all.push(late.clone());
    sink.publish(&all.iter().map(Event::view).collect::<Vec<_>>(), &[]).await.unwrap();
    sink.shutdown().await;

    let lake = Arc::new(LocalLake::new(dir.path().join("lake")));
    let writer = LakeWriter::new(lake.clone(), ParquetSettings::default());
    let summary = drain(&spool, &writer, RunBounds::default()).await.unwrap();
    assert_eq!(summary.events, 51);
    let files = lake_contents(lake.as_ref()).await;
    let hours: HashSet<&str> = files.keys().map(|p| &p[..p.rfind('/').unwrap()]).collect();
    assert_eq!(hours, HashSet::from(["events/dt=2026-11-24/hour=10", "events/dt=2026-11-24/hour=07"]));
    let seven: Vec<&String> = files.iter().filter(|(p, _)| p.contains("hour=07")).flat_map(|(_, ids)| ids).collect();
    assert_eq!(seven, [&late.event_id]);
    // The spool is consumed.
    assert!(queue::spool::SpoolReader::open(stream_dir(&spool, EVENTS_STREAM)).unwrap().sealed().unwrap().is_empty());
}

#[tokio::test]
async fn undecodable_records_and_collector_rejections_go_to_the_dead_letter_folder() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    {
        let writer = SpoolWriter::open(SpoolWriterConfig::new(stream_dir(&spool, EVENTS_STREAM))).unwrap();
        let good = event(&uuid(), "2026-11-24T10:00:00Z").to_json_bytes();
        writer.append(&[good, b"{not an event".to_vec()]).await.unwrap();
        writer.close();
    }
    {
        let sink = SpoolSink::open(SpoolWriterConfig::new(&spool)).unwrap();
        let rejected = FailedEvent::new(
            event_model::failed::FailureStage::Collector,
            Some("shop".into()),
            Some(3),
            vec![],
            "{\"x\":1}",
        );
        sink.publish(&[], &[rejected]).await.unwrap();
        sink.shutdown().await;
    }
    let lake = Arc::new(LocalLake::new(dir.path().join("lake")));
    let summary =
        drain(&spool, &LakeWriter::new(lake.clone(), ParquetSettings::default()), RunBounds::default()).await.unwrap();
    assert_eq!(summary.events, 1);
    assert_eq!(summary.dead_lettered, 2);
    let dead = lake.list("dead-letter/").await.unwrap();
    let mut reasons = Vec::new();
    for object in dead {
        let text = String::from_utf8(lake.get(&object.path).await.unwrap().to_vec()).unwrap();
        for line in text.lines() {
            let failure: FailedEvent = serde_json::from_str(line).unwrap();
            reasons
                .push((object.path.rsplit('/').next().unwrap().split('-').next().unwrap().to_owned(), failure.payload));
        }
    }
    reasons.sort();
    assert_eq!(
        reasons,
        [("collector".to_owned(), "{\"x\":1}".to_owned()), ("spool".to_owned(), "{not an event".to_owned())]
    );
}

/// The batcher binary is SIGKILLed at random moments over many runs; afterwards the lake must
/// hold every input event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_in_the_lake_exactly_once_across_random_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let lake_dir = dir.path().join("lake");
    let mut expected = HashSet::new();
    {
        let sink = SpoolSink::open(spool_config(&spool)).unwrap();
        for batch in 0..60 {
            let events: Vec<_> = (0..40)
                .map(|i| event(&uuid(), &format!("2026-11-24T{:02}:{:02}:00Z", 8 + (batch + i) % 4, i % 60)))
                .collect();
            expected.extend(events.iter().map(|e| e.event_id.clone()));
            sink.publish(&events.iter().map(Event::view).collect::<Vec<_>>(), &[]).await.unwrap();
        }
        sink.shutdown().await;
    }
    let segments = queue::spool::SpoolReader::open(stream_dir(&spool, EVENTS_STREAM)).unwrap().sealed().unwrap().len();
    assert!(segments > 50, "the test needs many segments, has {segments}");

    let binary = env!("CARGO_BIN_EXE_clickstream-batcher");
    let mut rng = rand::rng();
    let mut kills = 0;
    // Bounded: 12 interrupted runs, then one run to completion.
    for _ in 0..12 {
        let mut child = Command::new(binary)
            .args(["run", "--source", "spool", "--spool-dir"])
            .arg(&spool)
            .arg("--lake")
            .arg(&lake_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(5..120)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    // The run to completion takes its options from a config file (a subcommand option and a
    // global one), as a Cloud Run job or a local set-up would.
    let config = dir.path().join("batcher.toml");
    std::fs::write(
        &config,
        format!("spool_dir = {:?}\nlake = {:?}\n", spool.display().to_string(), lake_dir.display().to_string()),
    )
    .unwrap();
    let status = Command::new(binary).arg("--config").arg(&config).arg("run").stdout(Stdio::null()).status().unwrap();
    assert!(status.success());

    let lake = LocalLake::new(&lake_dir);
    let files = lake_contents(&lake).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for ids in files.values() {
        for id in ids {
            *seen.entry(id.clone()).or_default() += 1;
        }
    }
    let missing = expected.iter().filter(|id| !seen.contains_key(*id)).count();
    let duplicated = seen.values().filter(|count| **count > 1).count();
    assert_eq!(missing, 0, "{missing} events lost after {kills} kills");
    assert_eq!(duplicated, 0, "{duplicated} events duplicated after {kills} kills");
    assert_eq!(seen.len(), expected.len());
    // No temporary file of an interrupted write is visible to readers.
    for object in lake.list("events/").await.unwrap() {
        assert!(object.path.ends_with(".parquet"), "unexpected object {}", object.path);
    }
    eprintln!("sigkill: {segments} segments, {kills} kills, {} events, {} files", seen.len(), files.len());
}

#[tokio::test]
async fn duckdb_reads_the_lake_and_agrees_on_counts_and_values() {
    let Some(python) = common::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let sink = SpoolSink::open(spool_config(&spool)).unwrap();
    let mut events = Vec::new();
    for i in 0..300 {
        let mut e = event(&uuid(), &format!("2026-11-24T{:02}:{:02}:07.123456Z", 9 + i % 3, i % 60));
        e.price = Some(event_model::Money::parse(&format!("{}.{:02}", i, i % 100)).unwrap());
        e.category_code = Some(format!("electronics.c{}", i % 7));
        events.push(e);
    }
    // A duplicate delivery in the same segment is removed.
    events.push(events[0].clone());
    sink.publish(&events.iter().map(Event::view).collect::<Vec<_>>(), &[]).await.unwrap();
    sink.shutdown().await;
    let lake = Arc::new(LocalLake::new(dir.path().join("lake")));
    drain(&spool, &LakeWriter::new(lake.clone(), ParquetSettings::default()), RunBounds::default()).await.unwrap();

    let glob = format!("{}/events/*/*/*.parquet", dir.path().join("lake").display());
    let rows = common::duckdb_query(
        &python,
        &format!(
            "select count(*), count(distinct event_id), sum(price)::varchar, min(event_time)::varchar, \
         count(distinct hour), typeof(any_value(price)) from read_parquet('{glob}', hive_partitioning=true)"
        ),
    );
    let expected_sum: rust_decimal::Decimal = events[..300].iter().map(|e| e.price.unwrap().as_decimal()).sum();
    let row = &rows[0];
    assert_eq!(row[0], 300);
    assert_eq!(row[1], 300);
    assert_eq!(row[2].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap(), expected_sum);
    assert_eq!(row[3], "2026-11-24 09:00:07.123456+00");
    assert_eq!(row[4], 3);
    assert_eq!(row[5], "DECIMAL(38,9)");
    let one = common::duckdb_query(
        &python,
        &format!(
            "select category_code, price::varchar from read_parquet('{glob}') where event_id = '{}'",
            events[5].event_id
        ),
    );
    assert_eq!(one[0][0], "electronics.c5");
    assert_eq!(
        one[0][1].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap(),
        events[5].price.unwrap().as_decimal()
    );
}
