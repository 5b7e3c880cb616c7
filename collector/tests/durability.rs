//! A 2xx means durable: the collector binary is killed with SIGKILL while clients are sending,
//! and every event it acknowledged must be in the spool, intact, after recovery. Several rounds
//! restart the collector on the same spool, so recovery of the previous round's open segment is
//! exercised too. Segments are small, so the writer rotates often and writes most of them into
//! segments its helper prepared ahead: a kill can land while one is prepared or put in place.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_model::Event;
use queue::spool::{EVENTS_STREAM, stream_dir};

const ROUNDS: usize = 3;
const CLIENTS: usize = 16;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_collector(spool: &std::path::Path, port: u16) -> Child {
    start_collector_logging(spool, port, Stdio::null())
}

fn start_collector_logging(spool: &std::path::Path, port: u16, stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_clickstream-collector"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--spool-dir"])
        .arg(spool)
        .args(["--write-key", "durable-key=shop", "--spool-segment-age-ms", "200"])
        .args(["--spool-segment-bytes", "262144"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the collector binary starts")
}

async fn wait_ready(client: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the collector did not become ready within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let mut total_sent = 0usize;

    for round in 0..ROUNDS {
        let port = free_port();
        let mut child = start_collector(&spool, port);
        wait_ready(&client, port).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut clients = Vec::new();
        for worker in 0..CLIENTS {
            let (client, acknowledged, stop) = (client.clone(), acknowledged.clone(), stop.clone());
            clients.push(tokio::spawn(async move {
                let mut sent = 0usize;
                // Bounded: at most 2,000 requests per client per round.
                for i in 0..2_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let ids: Vec<String> = (0..(1 + i % 5)).map(|_| common::uuid()).collect();
                    let events: Vec<_> = ids.iter().map(|id| common::page_view(id)).collect();
                    sent += ids.len();
                    let response = client
                        .post(format!("http://127.0.0.1:{port}/v1/events"))
                        .header("x-write-key", "durable-key")
                        .json(&serde_json::json!({"events": events}))
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            acknowledged.lock().unwrap().extend(ids);
                        }
                        Ok(r) => panic!("round {round} worker {worker}: unexpected {}", r.status()),
                        Err(_) => break, // the collector is gone
                    }
                }
                sent
            }));
        }
        // Kill at a different moment each round, mid-stream.
        tokio::time::sleep(Duration::from_millis(300 + 250 * round as u64)).await;
        child.kill().expect("SIGKILL the collector");
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for handle in clients {
            total_sent += handle.await.unwrap();
        }
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 500, "too few events were acknowledged to prove anything: {}", acknowledged.len());
    // Recovery runs as the batcher's reader would run it: seal what the dead writer left open.
    let records = common::read_stream(&stream_dir(&spool, EVENTS_STREAM));
    let stored: Vec<Event> = records.iter().map(|r| Event::from_json_bytes(r).expect("every record decodes")).collect();
    let stored_ids: HashSet<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(stored_ids.len(), stored.len(), "an acknowledged request was stored twice");
    let missing: Vec<&String> = acknowledged.iter().filter(|id| !stored_ids.contains(id.as_str())).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events are missing from the spool after SIGKILL",
        missing.len(),
        acknowledged.len()
    );
    eprintln!(
        "durability: {ROUNDS} SIGKILLs, {total_sent} events sent, {} acknowledged, {} stored",
        acknowledged.len(),
        stored.len()
    );
}

/// A batcher seals the open segment a SIGKILLed collector left, holding the stream's lock while
/// it does; the collector restarted at that moment must wait for the lock, log that it waits,
/// and start, not exit with "another process is writing the spool". Each round holds the lock
/// for longer than a seal takes, the worst case of the race, so the test does not depend on
/// winning it by chance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_restarted_while_a_batcher_seals_waits_and_starts() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let events_dir = stream_dir(&spool, EVENTS_STREAM);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut acknowledged = HashSet::new();

    let mut port = free_port();
    let mut child = start_collector(&spool, port);
    wait_ready(&client, port).await;
    for round in 0..4 {
        for _ in 0..20 {
            let ids: Vec<String> = (0..5).map(|_| common::uuid()).collect();
            let events: Vec<_> = ids.iter().map(|id| common::page_view(id)).collect();
            let response = client
                .post(format!("http://127.0.0.1:{port}/v1/events"))
                .header("x-write-key", "durable-key")
                .json(&serde_json::json!({"events": events}))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "round {round}: {}", response.status());
            acknowledged.extend(ids);
        }
        child.kill().expect("SIGKILL the collector");
        child.wait().unwrap();

        // The batcher's side: take the writer's lock and seal, exactly as SpoolReader does.
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(events_dir.join(queue::spool::format::LOCK_FILE))
            .unwrap();
        lock.try_lock().expect("no writer holds the lock after SIGKILL");
        port = free_port();
        let log = dir.path().join(format!("collector-{round}.log"));
        child = start_collector_logging(&spool, port, std::fs::File::create(&log).unwrap().into());
        queue::spool::format::seal_abandoned(&events_dir).unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "round {round}: the restarted collector exited while the batcher held the lock: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        drop(lock);
        wait_ready(&client, port).await;
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("the spool lock is held"), "round {round}: the wait is logged: {logged}");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let records = common::read_stream(&events_dir);
    let stored: HashSet<String> =
        records.iter().map(|r| Event::from_json_bytes(r).expect("every record decodes").event_id).collect();
    assert_eq!(stored.len(), records.len(), "an acknowledged request was stored twice");
    let missing = acknowledged.iter().filter(|id| !stored.contains(*id)).count();
    assert_eq!(missing, 0, "{missing} of {} acknowledged events were lost", acknowledged.len());
}
