//! The spool's disk fills up under the running collector binary: a small tmpfs mounted for the
//! test, filled but for a little room. Writes that no longer fit are answered 503 with
//! `Retry-After` (nothing is acknowledged that is not on disk), the collector reports itself
//! not ready, the spool is not corrupted, and once space returns it accepts events again
//! without a restart. Every acknowledged event is in the spool, once.
//!
//! Mounting needs root (or a user namespace); without it the test is skipped with a message
//! (a failure under CLICKSTREAM_REQUIRE_EMULATORS, as in CI).

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use event_model::Event;
use queue::spool::{EVENTS_STREAM, stream_dir};

const FILESYSTEM_BYTES: u64 = 16 * 1024 * 1024;
const ROOM_BYTES: u64 = 3 * 1024 * 1024;

/// A tmpfs of [`FILESYSTEM_BYTES`], unmounted when dropped.
struct SmallFilesystem {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFilesystem {
    fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={FILESYSTEM_BYTES}"), "clickstream-test"])
            .arg(&path)
            .stderr(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            let message = "SKIPPED: cannot mount a small tmpfs for the disk-full test (needs root)";
            if std::env::var_os("CLICKSTREAM_REQUIRE_EMULATORS").is_some() {
                panic!("{message}");
            }
            eprintln!("{message}");
            return None;
        }
        Some(Self { path, _dir: dir })
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_collector(spool: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_clickstream-collector"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--spool-dir"])
        .arg(spool)
        .args(["--write-key", "disk-key=shop", "--spool-segment-bytes", "1048576"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
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

/// One request of 50 page views with new ids: the status, `Retry-After`, and the ids.
async fn post_batch(client: &reqwest::Client, port: u16) -> (u16, bool, Vec<String>) {
    let ids: Vec<String> = (0..50).map(|_| common::uuid()).collect();
    let events: Vec<_> = ids.iter().map(|id| common::page_view(id)).collect();
    let response = client
        .post(format!("http://127.0.0.1:{port}/v1/events"))
        .header("x-write-key", "disk-key")
        .json(&serde_json::json!({"events": events}))
        .send()
        .await
        .expect("the collector answers, full disk or not");
    (response.status().as_u16(), response.headers().contains_key("retry-after"), ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_means_503_no_corruption_and_recovery_when_space_returns() {
    let Some(fs) = SmallFilesystem::mount() else { return };
    let spool = fs.path.join("spool");
    let filler = fs.path.join("filler");
    std::fs::write(&filler, vec![0u8; (FILESYSTEM_BYTES - ROOM_BYTES) as usize]).unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let port = free_port();
    let mut child = start_collector(&spool, port);
    wait_ready(&client, port).await;

    let mut acknowledged = HashSet::new();
    let mut refused = 0;
    // Bounded: the room holds a few hundred requests of these.
    for _ in 0..2_000 {
        let (status, retry_after, ids) = post_batch(&client, port).await;
        match status {
            200 => acknowledged.extend(ids),
            503 => {
                assert!(retry_after, "a 503 carries Retry-After");
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("a full disk must be answered 503, got {other}"),
        }
    }
    assert!(refused >= 5, "the disk never filled: {} events acknowledged", acknowledged.len());
    assert!(acknowledged.len() > 1_000, "too few events acknowledged before the disk filled: {}", acknowledged.len());
    let ready = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503, "a collector that cannot write reports itself not ready");
    let full_at = acknowledged.len();

    // Space returns: accepted again, without a restart, within a bounded time.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut accepted_after = 0;
    while accepted_after < 20 {
        assert!(Instant::now() < deadline, "the collector did not recover within 20 s of space returning");
        let (status, _, ids) = post_batch(&client, port).await;
        if status == 200 {
            acknowledged.extend(ids);
            accepted_after += 1;
        } else {
            assert_eq!(status, 503);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    wait_ready(&client, port).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let records = common::read_stream(&stream_dir(&spool, EVENTS_STREAM));
    let stored: Vec<String> =
        records.iter().map(|r| Event::from_json_bytes(r).expect("every record decodes").event_id).collect();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a record was stored twice");
    let missing = acknowledged.iter().filter(|id| !unique.contains(id)).count();
    assert_eq!(missing, 0, "{missing} of {} acknowledged events are missing", acknowledged.len());
    assert!(!stream_dir(&spool, EVENTS_STREAM).join("quarantine").exists(), "no segment was quarantined");
    eprintln!(
        "disk full: {full_at} events acknowledged before it filled, {refused} requests refused with 503, \
         {} acknowledged in all, {} stored",
        acknowledged.len(),
        stored.len()
    );
}
