//! The embedded warehouse at an ordinary production volume and under kill -9, through the real
//! binary: an hour of a million events, hours loaded into a warehouse that already holds ten
//! million rows (each day's replacement then scans a large table, and DuckDB's queries run for
//! seconds), and a loader SIGKILLed mid-load and restarted at once.
//!
//! The large files are made from a thousand events the batcher's writer wrote, multiplied in
//! DuckDB with fresh event ids, so they are made in seconds and keep the contract's schema.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batcher::lake::hour_prefix;
use common::{Local, events, put};

/// Runs a DuckDB script in the venv's Python: `sys.argv[1..]` are `args`.
fn duckdb(s: &Local, script: &str, args: &[&Path]) {
    let output =
        Command::new(&s.python).args(["-c", &format!("import duckdb, sys\n{script}")]).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Writes `copies` × 1,000 events of the hour `hour` into one lake file, as one batcher
/// output file of that hour.
async fn big_hour(s: &Local, hour: &str, copies: u32) {
    let seed = s.lake_dir.join("seed");
    let seed_lake = batcher::lake::LocalLake::new(&seed);
    put(&seed_lake, hour, "seed", &events(hour, 1_000)).await;
    let prefix = hour_prefix(hour.parse().unwrap());
    let source = seed.join(&prefix).join("seed.parquet");
    let target_dir = s.lake_dir.join(&prefix);
    std::fs::create_dir_all(&target_dir).unwrap();
    duckdb(
        s,
        &format!(
            "duckdb.sql(\"COPY (SELECT e.* REPLACE (uuid()::VARCHAR AS event_id) FROM read_parquet('\" + sys.argv[1] + \"') e, range({copies})) \
             TO '\" + sys.argv[2] + \"' (FORMAT parquet, COMPRESSION zstd)\")"
        ),
        &[&source, &target_dir.join("big.parquet")],
    );
    std::fs::remove_dir_all(&seed).unwrap();
}

fn count(s: &Local, sql: &str) -> u64 {
    s.query(sql)[0][0].as_u64().unwrap()
}

#[tokio::test]
async fn an_hour_of_a_million_events_loads() {
    let Some(s) = common::local() else { return };
    big_hour(&s, "2026-11-20T14:00:00Z", 1_000).await;
    let started = Instant::now();
    let out = s.load_ok(&[]);
    let took = started.elapsed();
    assert!(out.starts_with("loader: 1 partitions loaded, 0 skipped, 0 deferred, 1000000 rows"), "{out}");
    assert_eq!(count(&s, "select count(distinct event_id) from raw.events"), 1_000_000);
    eprintln!("one hour of 1,000,000 events loaded in {took:.1?}");
}

#[tokio::test]
async fn hours_load_into_a_warehouse_already_holding_ten_million_rows() {
    let Some(s) = common::local() else { return };
    put(s.lake.as_ref(), "2026-11-20T09:00:00Z", "spool-1", &events("2026-11-20T09:00:00Z", 1_000)).await;
    s.load_ok(&[]);
    // Ten million rows of history over the 50 days before, straight into the table.
    duckdb(
        &s,
        "con = duckdb.connect(sys.argv[1])\n\
         con.execute(\"INSERT INTO raw.events SELECT e.* REPLACE (uuid()::VARCHAR AS event_id, \
         event_time - to_days(1 + (i % 50)::INTEGER) AS event_time) FROM raw.events e, range(10000) t(i)\")",
        &[&s.database],
    );
    assert_eq!(count(&s, "select count(*) from raw.events"), 10_001_000);

    // New hours of the loaded day and of a day inside the history.
    put(s.lake.as_ref(), "2026-11-20T10:00:00Z", "spool-1", &events("2026-11-20T10:00:00Z", 2_000)).await;
    put(s.lake.as_ref(), "2026-11-01T10:00:00Z", "spool-1", &events("2026-11-01T10:00:00Z", 3_000)).await;
    big_hour(&s, "2026-11-20T11:00:00Z", 500).await;
    let started = Instant::now();
    let out = s.load_ok(&[]);
    let took = started.elapsed();
    assert!(out.starts_with("loader: 2 partitions loaded, 0 skipped, 0 deferred, 506000 rows"), "{out}");
    let days = s.query(
        "select strftime(event_time at time zone 'UTC', '%Y-%m-%d'), count(*) from raw.events \
         where event_time >= '2026-11-20' or strftime(event_time at time zone 'UTC', '%Y-%m-%d') = '2026-11-01' \
         group by 1 order by 1",
    );
    // 2026-11-01 had 200,000 history rows (one in 50 of the ten million); its files now replace them.
    assert_eq!(days, serde_json::json!([["2026-11-01", 3000], ["2026-11-20", 503000]]));
    assert_eq!(count(&s, "select count(*) from raw.events"), 10_001_000 - 1_000 - 200_000 + 503_000 + 3_000);
    eprintln!("two days loaded into 10,001,000 rows in {took:.1?}");
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // pid (comm) state ppid …: comm may hold spaces, so parse after its closing parenthesis.
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            found.push(child);
        }
    }
    found
}

/// True while `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

#[tokio::test]
async fn a_loader_killed_mid_load_restarts_at_once_and_leaves_no_partial_day() {
    let Some(s) = common::local() else { return };
    put(s.lake.as_ref(), "2026-11-19T08:00:00Z", "spool-1", &events("2026-11-19T08:00:00Z", 500)).await;
    big_hour(&s, "2026-11-20T14:00:00Z", 1_500).await;
    big_hour(&s, "2026-11-21T14:00:00Z", 1_500).await;

    let mut loader = Command::new(env!("CARGO_BIN_EXE_clickstream-loader"))
        .arg("load")
        .arg("--lake")
        .arg(&s.lake_dir)
        .arg("--duckdb-path")
        .arg(&s.database)
        .args(["--duckdb-python", &s.python])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let worker = loop {
        if let Some(&worker) = children(loader.id()).first() {
            break worker;
        }
        assert!(Instant::now() < deadline, "the loader started no DuckDB worker");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Into the first big day's load: the small day takes well under this, each big one seconds.
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(loader.try_wait().unwrap().is_none(), "the loader finished before it could be killed mid-load");
    loader.kill().unwrap();
    loader.wait().unwrap();

    // Restarted at once: the worker dies with the loader, and the new loader waits out the
    // moment its lock takes to go.
    let restarted = Instant::now();
    let out = s.load_ok(&[]);
    let took = restarted.elapsed();
    assert!(!alive(worker), "the DuckDB worker outlived the loader");
    assert!(out.contains("0 deferred"), "{out}");

    let days = s.query(
        "select strftime(event_time at time zone 'UTC', '%Y-%m-%d'), count(*), count(distinct event_id) \
         from raw.events group by 1 order by 1",
    );
    assert_eq!(
        days,
        serde_json::json!([
            ["2026-11-19", 500, 500],
            ["2026-11-20", 1500000, 1500000],
            ["2026-11-21", 1500000, 1500000]
        ])
    );
    let loads = s.query(
        "select strftime(partition_date, '%Y-%m-%d'), count(*), max(row_count) from raw._partition_loads group by 1 order by 1",
    );
    assert_eq!(
        loads,
        serde_json::json!([["2026-11-19", 1, 500], ["2026-11-20", 1, 1500000], ["2026-11-21", 1, 1500000]]),
        "each day recorded once, by the load that committed it"
    );
    // The killed run's job was recorded before its transaction and never committed a load.
    let jobs = count(&s, "select count(*) from raw._load_jobs");
    let committed = count(&s, "select count(*) from raw._partition_loads");
    assert!(jobs > committed, "the kill landed before any load started: {jobs} jobs, {committed} loads");
    eprintln!("the restarted loader finished in {took:.1?}; {jobs} jobs recorded, {committed} loads committed");
}

/// Another process holding the warehouse (a dbt run, say): the loader waits for it, bounded,
/// and when the wait runs out exits 75 (try later) saying what to set, with nothing loaded.
#[tokio::test]
async fn a_locked_warehouse_is_waited_for_then_reported_as_try_later() {
    let Some(s) = common::local() else { return };
    put(s.lake.as_ref(), "2026-11-20T09:00:00Z", "spool-1", &events("2026-11-20T09:00:00Z", 100)).await;
    let hold = |seconds: f64| {
        let script = format!(
            "import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1])\nprint('held', flush=True)\ntime.sleep({seconds})"
        );
        let mut holder =
            Command::new(&s.python).args(["-c", &script]).arg(&s.database).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "held");
        common::Process(holder)
    };

    let holder = hold(30.0);
    let output = s.load(&["--duckdb-lock-wait-seconds", "1"]);
    assert_eq!(output.status.code(), Some(75), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lock") && stderr.contains("--duckdb-lock-wait-seconds"), "{stderr}");
    drop(holder);

    let _holder = hold(1.5);
    let started = Instant::now();
    let out = s.load_ok(&["--duckdb-lock-wait-seconds", "30"]);
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited for the holder");
    assert!(out.starts_with("loader: 1 partitions loaded"), "{out}");
}
