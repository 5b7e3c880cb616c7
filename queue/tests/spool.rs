//! The spool as the collector and the batcher use it: concurrent durable appends, sealing,
//! exclusive claims, consumption, and recovery from what a crashed writer leaves behind.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

use std::sync::Arc;
use std::time::Duration;

use queue::SinkError;
use queue::spool::format::{self, OPEN_SUFFIX, SEALED_SUFFIX};
use queue::spool::{SpoolReader, SpoolWriter, SpoolWriterConfig};

fn config(dir: &std::path::Path) -> SpoolWriterConfig {
    SpoolWriterConfig { max_segment_age: Duration::from_millis(100), ..SpoolWriterConfig::new(dir) }
}

fn drain(reader: &SpoolReader) -> Vec<Vec<u8>> {
    reader.recover_abandoned().unwrap();
    let mut records = Vec::new();
    while let Some(segment) = reader.claim_next().unwrap() {
        records.extend(segment.read().unwrap());
        segment.mark_done().unwrap();
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_all_durable_and_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Arc::new(SpoolWriter::open(config(dir.path())).unwrap());
    let mut tasks = Vec::new();
    for task in 0..64 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let record = format!("{task}-{i}").into_bytes();
                writer.append(&[record]).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (records, commits) = writer.commit_stats();
    assert_eq!(records, 64 * 50);
    assert!(commits < records, "group commit should share fsyncs: {commits} for {records} records");
    writer.close();
    let mut got: Vec<String> =
        drain(&SpoolReader::open(dir.path()).unwrap()).into_iter().map(|r| String::from_utf8(r).unwrap()).collect();
    got.sort();
    let mut want: Vec<String> = (0..64).flat_map(|t| (0..50).map(move |i| format!("{t}-{i}"))).collect();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn an_open_segment_is_sealed_after_its_maximum_age() {
    let dir = tempfile::tempdir().unwrap();
    let writer = SpoolWriter::open(config(dir.path())).unwrap();
    writer.append(&[b"first".to_vec()]).await.unwrap();
    let reader = SpoolReader::open(dir.path()).unwrap();
    let mut sealed = Vec::new();
    for _ in 0..50 {
        sealed = reader.sealed().unwrap();
        if !sealed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sealed.len(), 1, "the segment was not sealed within a second");
    assert!(format::list_segments(dir.path(), OPEN_SUFFIX).unwrap().is_empty());
    // While the writer lives, recovery must leave its segments alone.
    writer.append(&[b"second".to_vec()]).await.unwrap();
    assert_eq!(reader.recover_abandoned().unwrap(), 0);
    assert_eq!(format::list_segments(dir.path(), OPEN_SUFFIX).unwrap().len(), 1);
    writer.close();
    assert_eq!(drain(&reader), vec![b"first".to_vec(), b"second".to_vec()]);
}

#[tokio::test]
async fn a_claimed_segment_is_invisible_to_other_readers_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let writer = SpoolWriter::open(config(dir.path())).unwrap();
    writer.append(&[b"only".to_vec()]).await.unwrap();
    writer.close();
    let first = SpoolReader::open(dir.path()).unwrap();
    let second = SpoolReader::open(dir.path()).unwrap();
    let claimed = first.claim_next().unwrap().expect("a sealed segment");
    assert!(second.claim_next().unwrap().is_none(), "a claimed segment was claimed twice");
    let id = claimed.id();
    claimed.release();
    let again = second.claim_next().unwrap().expect("released segments can be claimed again");
    assert_eq!(again.id(), id, "reprocessing sees the same segment id");
    again.mark_done().unwrap();
    assert!(first.claim_next().unwrap().is_none());
    assert!(format::list_segments(dir.path(), SEALED_SUFFIX).unwrap().is_empty());
}

#[tokio::test]
async fn a_crashed_writers_torn_segment_is_recovered_by_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    // What a writer killed mid-write leaves: acknowledged records, then a torn one.
    let mut bytes = format::MAGIC.to_vec();
    format::encode_record(&mut bytes, b"acknowledged-1");
    format::encode_record(&mut bytes, b"acknowledged-2");
    let mut torn = Vec::new();
    format::encode_record(&mut torn, b"in flight");
    bytes.extend_from_slice(&torn[..torn.len() - 4]);
    std::fs::write(format::segment_path(dir.path(), 5, OPEN_SUFFIX), bytes).unwrap();
    let reader = SpoolReader::open(dir.path()).unwrap();
    assert_eq!(drain(&reader), vec![b"acknowledged-1".to_vec(), b"acknowledged-2".to_vec()]);
}

#[tokio::test]
async fn the_open_segment_is_zero_filled_ahead_and_sealed_to_its_records() {
    for direct_io in [true, false] {
        zero_filled_ahead_and_sealed_to_its_records(direct_io).await;
    }
}

async fn zero_filled_ahead_and_sealed_to_its_records(direct_io: bool) {
    let dir = tempfile::tempdir().unwrap();
    let writer = SpoolWriter::open(SpoolWriterConfig {
        max_segment_age: Duration::from_secs(3600),
        direct_io,
        ..SpoolWriterConfig::new(dir.path())
    })
    .unwrap();
    let records: Vec<Vec<u8>> = (0..100).map(|i| format!("event-{i}").into_bytes()).collect();
    for record in &records {
        writer.append(std::slice::from_ref(record)).await.unwrap();
    }
    let data_len = format::MAGIC.len() + records.iter().map(|r| r.len() + format::RECORD_HEADER_BYTES).sum::<usize>();
    let open = format::list_segments(dir.path(), OPEN_SUFFIX).unwrap();
    let open_path = format::segment_path(dir.path(), open[0], OPEN_SUFFIX);
    assert_eq!(std::fs::metadata(&open_path).unwrap().len(), format::PREALLOCATE_BYTES);
    assert_eq!(writer.depth().bytes, data_len as u64, "depth counts records, not padding");

    // A copy of the open segment is what a crash at this moment leaves on disk.
    let crashed = tempfile::tempdir().unwrap();
    std::fs::copy(&open_path, format::segment_path(crashed.path(), 1, OPEN_SUFFIX)).unwrap();
    assert_eq!(drain(&SpoolReader::open(crashed.path()).unwrap()), records);

    writer.close();
    let sealed = format::list_segments(dir.path(), SEALED_SUFFIX).unwrap();
    let sealed_path = format::segment_path(dir.path(), sealed[0], SEALED_SUFFIX);
    assert_eq!(std::fs::metadata(&sealed_path).unwrap().len(), data_len as u64);
    assert_eq!(drain(&SpoolReader::open(dir.path()).unwrap()), records);
}

const MIB: u64 = 1024 * 1024;

/// A stream that fills half a segment gets its next one prepared in full: header and zeros to
/// the segment size plus one extension step. Once the writer rotates into it, the open segment
/// has that length from its first record, and the records land in it whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_streams_next_segment_is_prepared_ahead_and_written_in_place() {
    for direct_io in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let writer = SpoolWriter::open(SpoolWriterConfig {
            max_segment_bytes: MIB,
            max_segment_age: Duration::from_secs(3600),
            direct_io,
            ..SpoolWriterConfig::new(dir.path())
        })
        .unwrap();
        let spare_len = 2 * MIB;
        let mut want = Vec::new();
        let mut used_prepared = false;
        // Each segment holds about 1 MiB of these; the first rotation may come before the helper
        // has finished the spare, a later one finds it ready.
        for i in 0..6000u32 {
            let record = format!("{i:06}-{}", "x".repeat(1000)).into_bytes();
            writer.append(std::slice::from_ref(&record)).await.unwrap();
            want.push(record);
            let open = format::list_segments(dir.path(), OPEN_SUFFIX).unwrap();
            if !format::list_segments(dir.path(), SEALED_SUFFIX).unwrap().is_empty()
                && let Some(id) = open.first()
                && std::fs::metadata(format::segment_path(dir.path(), *id, OPEN_SUFFIX)).unwrap().len() == spare_len
            {
                used_prepared = true;
                break;
            }
        }
        assert!(used_prepared, "no segment was written into a prepared spare (direct_io = {direct_io})");
        writer.close();
        assert!(!dir.path().join(format::SPARE_FILE).exists(), "a stopped writer leaves no spare behind");
        assert_eq!(drain(&SpoolReader::open(dir.path()).unwrap()), want, "direct_io = {direct_io}");
    }
}

/// A spare never holds an acknowledged record, so one a crash left behind is deleted at the
/// next start, whatever it contains, and never read as a segment.
#[tokio::test]
async fn a_spare_left_behind_is_deleted_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = format::MAGIC.to_vec();
    format::encode_record(&mut bytes, b"never acknowledged");
    bytes.resize(64 * 1024, 0);
    std::fs::write(dir.path().join(format::SPARE_FILE), bytes).unwrap();
    let writer = SpoolWriter::open(config(dir.path())).unwrap();
    assert!(!dir.path().join(format::SPARE_FILE).exists());
    writer.append(&[b"acknowledged".to_vec()]).await.unwrap();
    writer.close();
    assert_eq!(drain(&SpoolReader::open(dir.path()).unwrap()), vec![b"acknowledged".to_vec()]);
}

/// When the spare cannot be written (here its name is taken by a directory), the writer extends
/// its segments as they fill instead, and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_go_on_when_no_spare_can_be_prepared() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(format::SPARE_FILE)).unwrap();
    let writer = SpoolWriter::open(SpoolWriterConfig {
        max_segment_bytes: MIB,
        max_segment_age: Duration::from_secs(3600),
        ..SpoolWriterConfig::new(dir.path())
    })
    .unwrap();
    let want: Vec<Vec<u8>> = (0..3000u32).map(|i| format!("{i:06}-{}", "y".repeat(1000)).into_bytes()).collect();
    for chunk in want.chunks(10) {
        writer.append(chunk).await.unwrap();
    }
    writer.close();
    let reader = SpoolReader::open(dir.path()).unwrap();
    assert!(reader.sealed().unwrap().len() >= 2, "the records span several segments");
    assert_eq!(drain(&reader), want);
}

/// Records of every size, from a few bytes to several blocks (and past the direct writer's
/// first staging buffer), in groups and alone, land whole and in order in either write mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_every_size_survive_block_boundaries() {
    for direct_io in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let writer = SpoolWriter::open(SpoolWriterConfig {
            max_segment_bytes: 3 * 1024 * 1024,
            direct_io,
            ..config(dir.path())
        })
        .unwrap();
        let mut want = Vec::new();
        let mut size = 1usize;
        for round in 0..120u32 {
            let group: Vec<Vec<u8>> = (0..1 + round % 4)
                .map(|i| {
                    size = (size * 7 + 13) % 150_000 + 1;
                    (0..size).map(|b| (b as u32 + round + i) as u8 | 1).collect()
                })
                .collect();
            writer.append(&group).await.unwrap();
            want.extend(group);
        }
        writer.close();
        assert_eq!(drain(&SpoolReader::open(dir.path()).unwrap()), want, "direct_io = {direct_io}");
    }
}

#[tokio::test]
async fn an_empty_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let writer = SpoolWriter::open(config(dir.path())).unwrap();
    let refused = writer.append(&[b"ok".to_vec(), Vec::new()]).await;
    assert!(matches!(refused, Err(SinkError::Rejected(_))), "{refused:?}");
    assert_eq!(writer.commit_stats(), (0, 0), "nothing of a refused request is written");
}

#[tokio::test]
async fn a_restarted_writer_seals_the_old_segment_and_never_reuses_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = format::MAGIC.to_vec();
    format::encode_record(&mut bytes, b"from the previous run");
    let future_id = u64::MAX / 2;
    std::fs::write(format::segment_path(dir.path(), future_id, OPEN_SUFFIX), bytes).unwrap();
    let writer = SpoolWriter::open(config(dir.path())).unwrap();
    writer.append(&[b"new".to_vec()]).await.unwrap();
    writer.close();
    let sealed = format::list_segments(dir.path(), SEALED_SUFFIX).unwrap();
    assert_eq!(sealed.len(), 2);
    assert_eq!(sealed[0], future_id);
    assert!(sealed[1] > future_id, "segment ids must keep increasing");
}

#[tokio::test]
async fn only_one_writer_may_hold_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let _writer = SpoolWriter::open(config(dir.path())).unwrap();
    let started = std::time::Instant::now();
    let second = SpoolWriterConfig { lock_wait: Duration::from_millis(300), ..config(dir.path()) };
    let error = SpoolWriter::open(second).err().expect("a second writer is refused");
    assert!(error.to_string().contains("another process has been writing the spool"), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited for the lock first");
}

/// A batcher holds the writer's lock while it seals the open segment a killed collector left;
/// a collector restarted at that moment waits for it and then starts, it does not fail.
#[tokio::test]
async fn a_writer_waits_for_a_reader_sealing_an_abandoned_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = format::MAGIC.to_vec();
    format::encode_record(&mut bytes, b"left open by a killed writer");
    std::fs::write(format::segment_path(dir.path(), 7, OPEN_SUFFIX), bytes).unwrap();

    // The reader's side of the protocol, held for longer than a seal takes.
    let held = std::fs::File::options().create(true).truncate(false).write(true).open(dir.path().join("LOCK")).unwrap();
    held.try_lock().unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        drop(held);
    });
    let started = std::time::Instant::now();
    let writer = SpoolWriter::open(config(dir.path())).expect("the writer waits for the lock instead of failing");
    assert!(started.elapsed() >= Duration::from_millis(350), "it waited: {:?}", started.elapsed());
    releaser.join().unwrap();
    writer.append(&[b"after the restart".to_vec()]).await.unwrap();
    writer.close();

    let records = drain(&SpoolReader::open(dir.path()).unwrap());
    assert_eq!(records, vec![b"left open by a killed writer".to_vec(), b"after the restart".to_vec()]);
}

#[tokio::test]
async fn a_full_spool_refuses_appends_as_overload() {
    let dir = tempfile::tempdir().unwrap();
    let writer = SpoolWriter::open(SpoolWriterConfig { max_spool_bytes: 64, ..config(dir.path()) }).unwrap();
    writer.append(&[vec![b'x'; 100]]).await.unwrap();
    let error = writer.append(&[b"more".to_vec()]).await.unwrap_err();
    assert!(matches!(error, SinkError::Overloaded(_)), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_corrupt_sealed_segment_is_reported_and_can_be_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let writer = SpoolWriter::open(config(dir.path())).unwrap();
    writer.append(&[b"payload".to_vec()]).await.unwrap();
    writer.close();
    let reader = SpoolReader::open(dir.path()).unwrap();
    let id = reader.sealed().unwrap()[0];
    let path = format::segment_path(dir.path(), id, SEALED_SUFFIX);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let segment = reader.claim_next().unwrap().unwrap();
    let error = segment.read().unwrap_err();
    assert!(error.to_string().contains("checksum mismatch"), "{error}");
    let moved = segment.quarantine().unwrap();
    assert!(moved.exists());
    assert!(reader.claim_next().unwrap().is_none());
}
