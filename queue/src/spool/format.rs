//! The spool's on-disk format.
//!
//! A spool is a directory per stream (`events/`, `failed/`). Each stream holds:
//!
//! * `LOCK` — the writer holds an exclusive advisory lock on it while it runs; the OS releases
//!   it when the process dies, however it dies.
//! * `<id>.open` — the one segment being appended to. `<id>` is 20 decimal digits: the
//!   segment's creation time in nanoseconds since the Unix epoch, strictly increasing, so ids
//!   sort by age and are never reused even after every segment has been consumed.
//! * `<id>.seg` — sealed segments, immutable, ready for the batcher.
//! * `next.segment` ([`SPARE_FILE`]) — while a stream is busy, the segment after the open one,
//!   prepared ahead: the magic header, then zeros to the segment size, fsync'd. The writer
//!   renames it to `<id>.open` and makes the rename durable before writing a record to it, so
//!   it never holds a record; recovery deletes it.
//!
//! A segment file is an 8-byte magic `CLKSPL01` followed by records:
//!
//! ```text
//! +----------------+------------------+------------------+
//! | length: u32 LE | crc32c: u32 LE   | payload (length) |
//! +----------------+------------------+------------------+
//! ```
//!
//! `crc32c` covers the payload. A payload is never empty: a length of 0 marks the end of the
//! records. Records are written over zeros that are already allocated, so that a group
//! commit's `fdatasync` flushes data alone, not the file's size and block map as well: on ext4
//! that halves the cost of a commit. A busy stream's segments come prepared in full (see
//! `next.segment` above); otherwise the writer extends the open segment with zeros ahead of its
//! records, [`PREALLOCATE_BYTES`] at a time. Sealing cuts the zeros off, so a sealed segment
//! ends with its last record.
//!
//! The writer fsyncs a group of records before acknowledging any of them, so everything
//! acknowledged precedes anything that might be torn by a crash. Recovery of an abandoned
//! `.open` segment therefore keeps the records up to the first incomplete or corrupt one (or the
//! zero padding), truncates the rest (it was never acknowledged), and seals the segment. In a
//! sealed segment a bad checksum is real corruption and is reported, never skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of every segment file.
pub const MAGIC: &[u8; 8] = b"CLKSPL01";
/// Bytes before each record's payload.
pub const RECORD_HEADER_BYTES: usize = 8;
/// Largest payload a record may have.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;
/// Suffix of the segment being written.
pub const OPEN_SUFFIX: &str = "open";
/// Suffix of sealed segments.
pub const SEALED_SUFFIX: &str = "seg";
/// Name of the writer's lock file.
pub const LOCK_FILE: &str = "LOCK";
/// How far ahead of its records the writer zero-fills an open segment it has to extend.
pub const PREALLOCATE_BYTES: u64 = 1024 * 1024;
/// Name of the segment prepared ahead of need. Not a segment name: readers never list it.
pub const SPARE_FILE: &str = "next.segment";

/// Appends one framed record to `out`. `payload` must not be empty (a zero length marks the end
/// of a segment's records).
pub fn encode_record(out: &mut Vec<u8>, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    out.extend_from_slice(payload);
    frame_record(&mut out[start..]);
}

/// Fills in the header of the record in `record`: its first [`RECORD_HEADER_BYTES`] bytes are
/// the header to write, the rest is the payload (not empty, at most [`MAX_RECORD_BYTES`]).
pub fn frame_record(record: &mut [u8]) {
    let (header, payload) = record.split_at_mut(RECORD_HEADER_BYTES);
    debug_assert!(!payload.is_empty(), "spool records are never empty");
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    header[..4].copy_from_slice(&length.to_le_bytes());
    header[4..].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
}

/// How a scan of a segment ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belonged to a whole, valid record.
    Clean,
    /// The records end at `offset`, followed only by the zeros an open segment is extended with.
    Padding {
        /// Byte offset where the zeros begin.
        offset: u64,
    },
    /// The record starting at `offset` is incomplete or fails its checksum.
    Damaged {
        /// Byte offset of the first bad record.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// The records of a segment file and how the scan ended.
#[derive(Debug)]
pub struct Scan {
    /// Payloads of the valid records, in order.
    pub records: Vec<Vec<u8>>,
    /// Byte length of the valid prefix (header plus valid records).
    pub valid_len: u64,
    /// Whether the file ended cleanly.
    pub end: ScanEnd,
}

/// Reads every record of a segment file, stopping at the first bad one.
pub fn scan(path: &Path) -> io::Result<Scan> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(scan_bytes(&bytes))
}

/// Reads every record of a segment's bytes (magic header first), stopping at the first bad one.
pub fn scan_bytes(bytes: &[u8]) -> Scan {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Scan {
            records: Vec::new(),
            valid_len: 0,
            end: ScanEnd::Damaged { offset: 0, reason: "missing or wrong magic header".into() },
        };
    }
    let mut offset = MAGIC.len();
    let mut records = Vec::new();
    while offset < bytes.len() {
        let damaged = |reason: &str| ScanEnd::Damaged { offset: offset as u64, reason: reason.into() };
        if bytes.len() - offset < RECORD_HEADER_BYTES {
            return Scan { records, valid_len: offset as u64, end: damaged("torn record header") };
        }
        let length =
            u32::from_le_bytes([bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]]) as usize;
        let checksum = u32::from_le_bytes([bytes[offset + 4], bytes[offset + 5], bytes[offset + 6], bytes[offset + 7]]);
        if length == 0 {
            let end = if bytes[offset..].iter().all(|&b| b == 0) {
                ScanEnd::Padding { offset: offset as u64 }
            } else {
                damaged("bytes after the end-of-records marker (a torn write)")
            };
            return Scan { records, valid_len: offset as u64, end };
        }
        let start = offset + RECORD_HEADER_BYTES;
        if length > MAX_RECORD_BYTES || bytes.len() - start < length {
            return Scan { records, valid_len: offset as u64, end: damaged("torn record payload") };
        }
        let payload = &bytes[start..start + length];
        if crc32c::crc32c(payload) != checksum {
            return Scan { records, valid_len: offset as u64, end: damaged("checksum mismatch") };
        }
        records.push(payload.to_vec());
        offset = start + length;
    }
    Scan { records, valid_len: offset as u64, end: ScanEnd::Clean }
}

/// Makes a directory entry change (create, rename, unlink) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Path of segment `id` with `suffix` in `dir`.
pub fn segment_path(dir: &Path, id: u64, suffix: &str) -> PathBuf {
    dir.join(format!("{id:020}.{suffix}"))
}

/// Parses a segment file name into its id and suffix.
pub fn parse_segment_name(name: &str) -> Option<(u64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

/// Segment ids with the given suffix in `dir`, oldest first.
pub fn list_segments(dir: &Path, suffix: &str) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str()
            && let Some((id, found)) = parse_segment_name(name)
            && found == suffix
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Seals every `.open` segment in `dir` that no writer is appending to.
///
/// The caller must hold the stream's lock. Keeps each segment's valid prefix, truncates a torn
/// tail, removes segments without records, and renames the rest to `.seg`. Deletes a prepared
/// [`SPARE_FILE`] (it never holds records). Returns how many segments were sealed.
pub fn seal_abandoned(dir: &Path) -> io::Result<usize> {
    match fs::remove_file(dir.join(SPARE_FILE)) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        // Something else holds the name; the writer then prepares no segments ahead.
        Err(error) => tracing::warn!(%error, dir = %dir.display(), "could not remove {SPARE_FILE}"),
    }
    let mut sealed = 0;
    for id in list_segments(dir, OPEN_SUFFIX)? {
        let open = segment_path(dir, id, OPEN_SUFFIX);
        let result = scan(&open)?;
        if result.records.is_empty() {
            fs::remove_file(&open)?;
            continue;
        }
        match &result.end {
            ScanEnd::Clean => {}
            ScanEnd::Padding { .. } => truncate(&open, result.valid_len)?,
            ScanEnd::Damaged { offset, reason } => {
                tracing::warn!(
                    segment = id,
                    offset,
                    reason,
                    "truncating the unacknowledged tail of an abandoned spool segment"
                );
                truncate(&open, result.valid_len)?;
            }
        }
        seal(dir, id)?;
        sealed += 1;
    }
    sync_dir(dir)?;
    Ok(sealed)
}

fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

/// Renames segment `id` from `.open` to `.seg` and makes the rename durable.
pub fn seal(dir: &Path, id: u64) -> io::Result<()> {
    fs::rename(segment_path(dir, id, OPEN_SUFFIX), segment_path(dir, id, SEALED_SUFFIX))?;
    sync_dir(dir)
}

/// Creates a new, empty `.open` segment with its header, durable before it is used. The file's
/// cursor is left after the header; the writer writes at explicit offsets from there on.
pub fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    let path = segment_path(dir, id, OPEN_SUFFIX);
    let mut file = OpenOptions::new().create_new(true).write(true).open(&path)?;
    file.write_all(MAGIC)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_segment(dir: &Path, id: u64, payloads: &[&[u8]], tail: &[u8]) -> PathBuf {
        let mut bytes = MAGIC.to_vec();
        for payload in payloads {
            encode_record(&mut bytes, payload);
        }
        bytes.extend_from_slice(tail);
        let path = segment_path(dir, id, OPEN_SUFFIX);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_clean_segment_scans_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_segment(dir.path(), 1, &[b"a", b"bb", b"c"], b"");
        let result = scan(&path).unwrap();
        assert_eq!(result.records, vec![b"a".to_vec(), b"bb".to_vec(), b"c".to_vec()]);
        assert_eq!(result.end, ScanEnd::Clean);
    }

    #[test]
    fn zero_padding_ends_the_records_and_recovery_cuts_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_segment(dir.path(), 5, &[b"one", b"two"], &[0; 4096]);
        let result = scan(&path).unwrap();
        assert_eq!(result.records, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(result.end, ScanEnd::Padding { offset: result.valid_len });
        assert_eq!(seal_abandoned(dir.path()).unwrap(), 1);
        let sealed = segment_path(dir.path(), 5, SEALED_SUFFIX);
        assert_eq!(fs::metadata(&sealed).unwrap().len(), result.valid_len);
        assert_eq!(scan(&sealed).unwrap().end, ScanEnd::Clean);
    }

    #[test]
    fn a_record_persisted_past_unwritten_padding_is_a_torn_tail() {
        // A crash may persist a later block of an unacknowledged group but not an earlier one:
        // zeros where a header should be, then record bytes. Nothing after the zeros is kept.
        let dir = tempfile::tempdir().unwrap();
        let mut tail = vec![0; 64];
        encode_record(&mut tail, b"never acknowledged");
        let path = write_segment(dir.path(), 6, &[b"kept"], &tail);
        let result = scan(&path).unwrap();
        assert_eq!(result.records, vec![b"kept".to_vec()]);
        assert!(matches!(result.end, ScanEnd::Damaged { .. }));
        assert_eq!(seal_abandoned(dir.path()).unwrap(), 1);
        let sealed = segment_path(dir.path(), 6, SEALED_SUFFIX);
        assert_eq!(scan(&sealed).unwrap().records, vec![b"kept".to_vec()]);
    }

    #[test]
    fn a_torn_tail_is_truncated_and_the_segment_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let mut torn = Vec::new();
        encode_record(&mut torn, b"never acknowledged");
        torn.truncate(torn.len() - 3);
        write_segment(dir.path(), 7, &[b"one", b"two"], &torn);
        assert_eq!(seal_abandoned(dir.path()).unwrap(), 1);
        let sealed = segment_path(dir.path(), 7, SEALED_SUFFIX);
        let result = scan(&sealed).unwrap();
        assert_eq!(result.records, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(result.end, ScanEnd::Clean);
    }

    #[test]
    fn a_flipped_bit_is_detected_by_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_segment(dir.path(), 1, &[b"hello", b"world"], b"");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(&path, bytes).unwrap();
        let result = scan(&path).unwrap();
        assert_eq!(result.records, vec![b"hello".to_vec()]);
        assert!(matches!(result.end, ScanEnd::Damaged { ref reason, .. } if reason == "checksum mismatch"));
    }

    #[test]
    fn empty_abandoned_segments_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 3, &[], b"");
        fs::write(segment_path(dir.path(), 4, OPEN_SUFFIX), b"CLK").unwrap();
        assert_eq!(seal_abandoned(dir.path()).unwrap(), 0);
        assert!(list_segments(dir.path(), OPEN_SUFFIX).unwrap().is_empty());
        assert!(list_segments(dir.path(), SEALED_SUFFIX).unwrap().is_empty());
    }

    #[test]
    fn segment_names_round_trip_and_sort_by_id() {
        let dir = tempfile::tempdir().unwrap();
        for id in [30, 4, 1_700_000_000_000_000_000] {
            write_segment(dir.path(), id, &[b"x"], b"");
        }
        fs::write(dir.path().join("LOCK"), b"").unwrap();
        fs::write(dir.path().join("notes.txt"), b"").unwrap();
        assert_eq!(list_segments(dir.path(), OPEN_SUFFIX).unwrap(), vec![4, 30, 1_700_000_000_000_000_000]);
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some((42, "seg")));
        assert_eq!(parse_segment_name("42.seg"), None);
    }

    /// Properties of the record framing over generated payloads and events; `make fuzz` runs
    /// them longer.
    mod proptests {
        use event_model::Event;
        use proptest::prelude::*;

        use super::*;
        use event_model::strategies;

        fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
            prop::collection::vec(
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 1..64),
                    prop::collection::vec(Just(0u8), 1..16),
                    prop::collection::vec(any::<u8>(), 1..2048),
                ],
                0..12,
            )
        }

        fn segment(payloads: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
            let mut bytes = MAGIC.to_vec();
            let mut ends = Vec::new();
            for payload in payloads {
                encode_record(&mut bytes, payload);
                ends.push(bytes.len());
            }
            (bytes, ends)
        }

        proptest! {
            #![proptest_config(strategies::config(128))]

            /// Records framed one after another scan back as they were, with or without the zero
            /// padding an open segment carries.
            #[test]
            fn records_scan_back_as_written(payloads in payloads(), padding in 0usize..100) {
                let (mut bytes, _) = segment(&payloads);
                let written = bytes.len() as u64;
                let clean = scan_bytes(&bytes);
                prop_assert_eq!(&clean.records, &payloads);
                prop_assert_eq!(clean.valid_len, written);
                prop_assert_eq!(clean.end, ScanEnd::Clean);
                bytes.resize(bytes.len() + padding, 0);
                let padded = scan_bytes(&bytes);
                prop_assert_eq!(&padded.records, &payloads);
                prop_assert_eq!(padded.valid_len, written);
                let expected_end = match padding {
                    0 => ScanEnd::Clean,
                    1..RECORD_HEADER_BYTES => ScanEnd::Damaged { offset: written, reason: "torn record header".into() },
                    _ => ScanEnd::Padding { offset: written },
                };
                prop_assert_eq!(padded.end, expected_end);
            }

            /// A segment cut anywhere (a crash mid-write) keeps exactly the records before the
            /// cut, and the valid prefix ends where the last whole record does.
            #[test]
            fn a_cut_keeps_exactly_the_whole_records_before_it(payloads in payloads(), cut in any::<prop::sample::Index>()) {
                let (bytes, ends) = segment(&payloads);
                let cut = MAGIC.len() + cut.index(bytes.len() - MAGIC.len() + 1);
                let whole = ends.iter().filter(|&&end| end <= cut).count();
                let result = scan_bytes(&bytes[..cut]);
                prop_assert_eq!(&result.records[..], &payloads[..whole]);
                let boundary = if whole == 0 { MAGIC.len() } else { ends[whole - 1] };
                prop_assert_eq!(result.valid_len, boundary as u64);
                prop_assert_eq!(result.end == ScanEnd::Clean, boundary == cut);
            }

            /// A flipped bit keeps the records before the damaged one and is reported, never
            /// returned as data.
            #[test]
            fn a_flipped_bit_is_reported_and_never_returned(
                payloads in payloads().prop_filter("a record to damage", |p| !p.is_empty()),
                at in any::<prop::sample::Index>(),
                bit in 0u8..8,
            ) {
                let (mut bytes, ends) = segment(&payloads);
                let at = MAGIC.len() + at.index(bytes.len() - MAGIC.len());
                bytes[at] ^= 1 << bit;
                let damaged = ends.iter().filter(|&&end| end <= at).count();
                let result = scan_bytes(&bytes);
                prop_assert_eq!(&result.records[..], &payloads[..damaged]);
                prop_assert!(matches!(result.end, ScanEnd::Damaged { .. } | ScanEnd::Padding { .. }), "{:?}", result.end);
            }

            /// Any bytes at all: scanned without panicking, every record returned passes its
            /// checksum, and the valid prefix is within the file.
            #[test]
            fn arbitrary_bytes_scan_without_panicking(tail in prop::collection::vec(any::<u8>(), 0..512), with_magic in any::<bool>()) {
                let mut bytes = if with_magic { MAGIC.to_vec() } else { Vec::new() };
                bytes.extend_from_slice(&tail);
                let result = scan_bytes(&bytes);
                prop_assert!(result.valid_len as usize <= bytes.len());
                if result.valid_len == 0 {
                    // No magic header: nothing is read.
                    prop_assert!(result.records.is_empty());
                    let nothing_read = matches!(result.end, ScanEnd::Damaged { offset: 0, .. });
                    prop_assert!(nothing_read);
                } else {
                    // What was read is exactly the valid prefix, framed again.
                    let (rescanned, _) = segment(&result.records);
                    prop_assert_eq!(&rescanned[..], &bytes[..result.valid_len as usize]);
                }
            }
        }

        // Generated events cost more to make than to frame: fewer cases in `cargo test`.
        proptest! {
            #![proptest_config(strategies::config(48))]

            /// Stored events through the spool's framing decode to the same events.
            #[test]
            fn events_survive_the_spool_framing(events in prop::collection::vec(strategies::event(), 0..6)) {
                let payloads: Vec<Vec<u8>> = events.iter().map(Event::to_json_bytes).collect();
                let (bytes, _) = segment(&payloads);
                let decoded: Vec<Event> =
                    scan_bytes(&bytes).records.iter().map(|record| Event::from_json_bytes(record).unwrap()).collect();
                prop_assert_eq!(decoded, events);
            }
        }
    }
}
