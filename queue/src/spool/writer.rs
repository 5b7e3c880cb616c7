//! The spool writer: group commit of appends on a dedicated thread.
//!
//! Requests arrive on a bounded channel. The writer thread takes every request that is waiting,
//! writes all their records with one `writev`, calls `fdatasync` once, and only then answers
//! each request. Under concurrency one fsync therefore covers many requests (group commit); with
//! a single client it is one fsync per request. A full channel or a spool over its size cap is an
//! overload the caller turns into `503 Retry-After`, never an unbounded queue in memory.
//!
//! Two things keep a commit cheap:
//!
//! * The records overwrite zeros already allocated ahead of them, so a commit's `fdatasync` has
//!   no file size or block map to flush, only the records. A helper thread writes a busy
//!   stream's next segment in full before it is needed ([`format::SPARE_FILE`]); otherwise the
//!   writer extends the open segment by [`format::PREALLOCATE_BYTES`] of zeros when it fills.
//! * Where the filesystem supports it, the open segment is written with `O_DIRECT`: whole 4 KiB
//!   blocks from an aligned buffer straight to the device, without a copy into the page cache
//!   (which on a VM cost more CPU than the disk write itself). Each commit rewrites the last,
//!   partial block with the bytes it already held, so acknowledged bytes are only ever
//!   rewritten with themselves. Filesystems without `O_DIRECT` (tmpfs, some network and FUSE
//!   filesystems), and systems other than Linux, get the page cache, as does
//!   [`SpoolWriterConfig::direct_io`] `= false`.

use std::fs::File;
use std::io::{self, IoSlice, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use super::format::{self, LOCK_FILE, OPEN_SUFFIX, SEALED_SUFFIX};
use crate::SinkError;

mod prepare;

use prepare::{Preparer, Spare};

/// Settings of one spool stream's writer.
#[derive(Clone, Debug)]
pub struct SpoolWriterConfig {
    /// The stream's directory (created when missing).
    pub dir: PathBuf,
    /// Seal the open segment once it holds this many bytes.
    pub max_segment_bytes: u64,
    /// Seal a non-empty open segment this long after its first record.
    pub max_segment_age: Duration,
    /// Requests that may wait for the writer before new ones are refused as overload.
    pub max_pending_requests: usize,
    /// Refuse appends (overload) while unconsumed segments hold more than this many bytes;
    /// 0 means no cap.
    pub max_spool_bytes: u64,
    /// Write segments with `O_DIRECT` where the filesystem supports it (see the module docs);
    /// `false` always goes through the page cache.
    pub direct_io: bool,
    /// How long [`SpoolWriter::open`] waits for the stream's lock while someone else holds it.
    /// A batcher takes the lock for a moment to seal what a crashed writer left open; a writer
    /// restarted at that moment waits for it instead of failing. A lock still held after this
    /// long belongs to another running writer, and opening fails.
    pub lock_wait: Duration,
}

impl SpoolWriterConfig {
    /// Defaults for a stream in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_segment_bytes: 32 * 1024 * 1024,
            max_segment_age: Duration::from_secs(5),
            max_pending_requests: 4096,
            max_spool_bytes: 0,
            direct_io: true,
            lock_wait: Duration::from_secs(10),
        }
    }
}

/// What the spool holds that the batcher has not consumed yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolDepth {
    /// Sealed plus open segments.
    pub segments: u64,
    /// Their bytes on disk.
    pub bytes: u64,
}

struct Append {
    payload: Vec<u8>,
    records: usize,
    done: oneshot::Sender<io::Result<()>>,
}

struct Shared {
    depth_segments: AtomicU64,
    depth_bytes: AtomicU64,
    failed: AtomicBool,
    commits: AtomicU64,
    records: AtomicU64,
}

/// Records framed for one append, each written in place where it will be sent from, so a
/// record's bytes are not built in a buffer of their own first.
#[derive(Debug, Default)]
pub struct Records {
    payload: Vec<u8>,
    count: usize,
}

impl Records {
    /// Room for `bytes` of framed records.
    pub fn with_capacity(bytes: usize) -> Self {
        Self { payload: Vec::with_capacity(bytes), count: 0 }
    }

    /// Adds a copy of `record`.
    pub fn push(&mut self, record: &[u8]) -> Result<(), SinkError> {
        self.push_with(|out| out.extend_from_slice(record))
    }

    /// Adds the record that `write` appends to the buffer it is given. A record must not be
    /// empty nor larger than the spool's record limit; one that is, is refused and left out.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), SinkError> {
        let start = self.payload.len();
        self.payload.extend_from_slice(&[0; format::RECORD_HEADER_BYTES]);
        write(&mut self.payload);
        let length = self.payload.len() - start - format::RECORD_HEADER_BYTES;
        if length == 0 || length > format::MAX_RECORD_BYTES {
            self.payload.truncate(start);
            return Err(SinkError::Rejected(if length == 0 {
                "an empty record cannot be spooled".into()
            } else {
                format!("a record of {length} bytes exceeds the spool's {} byte limit", format::MAX_RECORD_BYTES)
            }));
        }
        format::frame_record(&mut self.payload[start..]);
        self.count += 1;
        Ok(())
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Appends records durably to one spool stream.
pub struct SpoolWriter {
    /// Taken (dropped) at close, so the writer thread sees the channel end.
    sender: std::sync::Mutex<Option<SyncSender<Append>>>,
    shared: Arc<Shared>,
    max_spool_bytes: u64,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl SpoolWriter {
    /// Opens the stream for writing: takes its lock, recovers what a previous writer left open,
    /// and starts the writer thread.
    pub fn open(config: SpoolWriterConfig) -> io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let lock = lock_stream(&config.dir, config.lock_wait)?;
        let recovered = format::seal_abandoned(&config.dir)?;
        if recovered > 0 {
            tracing::info!(dir = %config.dir.display(), recovered, "sealed segments left open by a previous writer");
        }
        let shared = Arc::new(Shared {
            depth_segments: AtomicU64::new(0),
            depth_bytes: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            commits: AtomicU64::new(0),
            records: AtomicU64::new(0),
        });
        refresh_depth(&config.dir, &shared, None);
        let (sender, receiver) = sync_channel(config.max_pending_requests.max(1));
        let thread_shared = shared.clone();
        let max_spool_bytes = config.max_spool_bytes;
        let thread = std::thread::Builder::new().name("spool-writer".into()).spawn(move || {
            let _lock = lock;
            let mut state = WriterState::new(config, thread_shared.clone());
            state.run(receiver);
        })?;
        Ok(Self {
            sender: std::sync::Mutex::new(Some(sender)),
            shared,
            max_spool_bytes,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Appends `records` and returns once they are on disk (fsync'd).
    pub async fn append(&self, records: &[Vec<u8>]) -> Result<(), SinkError> {
        let mut framed = Records::with_capacity(records.iter().map(|r| r.len() + format::RECORD_HEADER_BYTES).sum());
        for record in records {
            framed.push(record)?;
        }
        self.append_records(framed).await
    }

    /// Appends records framed in place by the caller, and returns once they are on disk.
    pub async fn append_records(&self, records: Records) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        if self.max_spool_bytes > 0 && self.shared.depth_bytes.load(Ordering::Relaxed) > self.max_spool_bytes {
            return Err(SinkError::Overloaded("the spool is full: the batcher is not keeping up".into()));
        }
        let Records { payload, count } = records;
        let (done, wait) = oneshot::channel();
        let append = Append { payload, records: count, done };
        let sender = self.sender.lock().ok().and_then(|s| s.clone()).ok_or_else(closed)?;
        match sender.try_send(append) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(SinkError::Overloaded("the spool writer's queue is full".into()));
            }
            Err(TrySendError::Disconnected(_)) => return Err(closed()),
        }
        drop(sender);
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SinkError::Unavailable(format!("spool write failed: {error}"))),
            Err(_) => Err(closed()),
        }
    }

    /// Unconsumed segments and bytes, as of the writer's last look at the directory.
    pub fn depth(&self) -> SpoolDepth {
        SpoolDepth {
            segments: self.shared.depth_segments.load(Ordering::Relaxed),
            bytes: self.shared.depth_bytes.load(Ordering::Relaxed),
        }
    }

    /// Records written and group commits (fsyncs) made since the writer opened.
    pub fn commit_stats(&self) -> (u64, u64) {
        (self.shared.records.load(Ordering::Relaxed), self.shared.commits.load(Ordering::Relaxed))
    }

    /// Ok while the writer thread runs and its last write succeeded.
    pub fn check_ready(&self) -> Result<(), SinkError> {
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(SinkError::Unavailable("the last spool write failed".into()));
        }
        let running = self.thread.lock().map(|t| t.as_ref().is_some_and(|h| !h.is_finished())).unwrap_or(false);
        if running { Ok(()) } else { Err(closed()) }
    }

    /// Stops accepting appends, finishes the waiting ones, seals the open segment and waits for
    /// the writer thread to exit.
    pub fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        self.close();
    }
}

fn closed() -> SinkError {
    SinkError::Unavailable("the spool writer is shut down".into())
}

/// Counts the stream's segments and bytes. `open` is the writer's open segment (id, bytes of
/// records), counted by its records rather than its zero-filled length.
fn refresh_depth(dir: &Path, shared: &Shared, open: Option<(u64, u64)>) {
    let mut segments = 0;
    let mut bytes = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some((id, suffix)) = name.to_str().and_then(format::parse_segment_name) else {
                continue;
            };
            if suffix == SEALED_SUFFIX || suffix == OPEN_SUFFIX {
                segments += 1;
                bytes += match open {
                    Some((open_id, len)) if open_id == id && suffix == OPEN_SUFFIX => len,
                    _ => entry.metadata().map(|m| m.len()).unwrap_or(0),
                };
            }
        }
    }
    shared.depth_segments.store(segments, Ordering::Relaxed);
    shared.depth_bytes.store(bytes, Ordering::Relaxed);
}

struct OpenSegment {
    id: u64,
    file: File,
    /// The `O_DIRECT` state, when the segment is written that way.
    direct: Option<DirectIo>,
    /// Bytes of header and records; the file's cursor is here.
    len: u64,
    /// Bytes allocated and zero-filled, `>= len`; the file's length.
    allocated: u64,
    first_record_at: Option<Instant>,
    /// Whether the next segment has been asked of the preparer.
    spare_requested: bool,
}

struct WriterState {
    config: SpoolWriterConfig,
    shared: Arc<Shared>,
    open: Option<OpenSegment>,
    last_id: u64,
    last_depth_refresh: Instant,
    /// Prepares the next segment while this one fills; `None` if its thread could not start.
    preparer: Option<Preparer>,
}

/// How often the writer re-reads the directory to learn what the batcher consumed.
const DEPTH_REFRESH: Duration = Duration::from_secs(1);
/// Most bytes one group commit writes before answering its requests.
const MAX_GROUP_BYTES: usize = 8 * 1024 * 1024;

impl WriterState {
    fn new(config: SpoolWriterConfig, shared: Arc<Shared>) -> Self {
        let last_id =
            format::list_segments(&config.dir, SEALED_SUFFIX).ok().and_then(|ids| ids.last().copied()).unwrap_or(0);
        let spare_len = round_up(config.max_segment_bytes.saturating_add(format::PREALLOCATE_BYTES), BLOCK as u64);
        let preparer = Preparer::start(config.dir.clone(), spare_len, config.direct_io)
            .inspect_err(|error| tracing::warn!(%error, "could not start the spool's segment preparer"))
            .ok();
        Self { config, shared, open: None, last_id, last_depth_refresh: Instant::now(), preparer }
    }

    fn run(&mut self, receiver: Receiver<Append>) {
        loop {
            match receiver.recv_timeout(self.wait_time()) {
                Ok(first) => {
                    let mut group = vec![first];
                    let mut bytes = group[0].payload.len();
                    while bytes < MAX_GROUP_BYTES {
                        match receiver.try_recv() {
                            Ok(next) => {
                                bytes += next.payload.len();
                                group.push(next);
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(group);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.rotate_if_due();
            if self.last_depth_refresh.elapsed() >= DEPTH_REFRESH {
                refresh_depth(&self.config.dir, &self.shared, self.open.as_ref().map(|o| (o.id, o.len)));
                self.last_depth_refresh = Instant::now();
            }
        }
        if let Err(error) = self.seal_open() {
            tracing::error!(%error, "could not seal the open spool segment at shutdown; it is recovered at the next start");
        }
        if let Some(mut preparer) = self.preparer.take() {
            preparer.stop();
        }
        refresh_depth(&self.config.dir, &self.shared, self.open.as_ref().map(|o| (o.id, o.len)));
    }

    fn wait_time(&self) -> Duration {
        let until_rotation = self
            .open
            .as_ref()
            .and_then(|open| open.first_record_at)
            .map(|first| self.config.max_segment_age.saturating_sub(first.elapsed()))
            .unwrap_or(DEPTH_REFRESH);
        until_rotation.clamp(Duration::from_millis(1), DEPTH_REFRESH)
    }

    fn commit(&mut self, group: Vec<Append>) {
        let records: usize = group.iter().map(|a| a.records).sum();
        let result = self.write_group(&group);
        match &result {
            Ok(()) => {
                self.shared.failed.store(false, Ordering::Relaxed);
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                self.shared.records.fetch_add(records as u64, Ordering::Relaxed);
                metrics::counter!("clickstream_spool_records_written_total").increment(records as u64);
                metrics::counter!("clickstream_spool_fsyncs_total").increment(1);
            }
            Err(error) => {
                self.shared.failed.store(true, Ordering::Relaxed);
                tracing::error!(%error, dir = %self.config.dir.display(), "spool write failed");
            }
        }
        for append in group {
            let answer = match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(io::Error::new(error.kind(), error.to_string())),
            };
            let _ = append.done.send(answer);
        }
    }

    fn write_group(&mut self, group: &[Append]) -> io::Result<()> {
        match self.write_group_once(group) {
            // A filesystem may accept O_DIRECT at open and refuse the writes; nothing of the
            // group was acknowledged, so write it again through the page cache from now on.
            Err(error)
                if error.raw_os_error() == Some(EINVAL) && self.open.as_ref().is_some_and(|o| o.direct.is_some()) =>
            {
                tracing::warn!(%error, dir = %self.config.dir.display(), "direct writes refused; writing the spool through the page cache");
                self.config.direct_io = false;
                if let Some(open) = self.open.as_mut() {
                    let path = format::segment_path(&self.config.dir, open.id, OPEN_SUFFIX);
                    let mut file = File::options().write(true).open(path)?;
                    file.seek(io::SeekFrom::Start(open.len))?;
                    open.file = file;
                    open.direct = None;
                }
                self.write_group_once(group)
            }
            result => result,
        }
    }

    fn write_group_once(&mut self, group: &[Append]) -> io::Result<()> {
        if self.open.is_none() {
            self.open_new_segment()?;
        }
        let Some(open) = self.open.as_mut() else {
            return Err(io::Error::other("no open segment"));
        };
        let before = open.len;
        let written: u64 = group.iter().map(|a| a.payload.len() as u64).sum();
        let max_segment_bytes = self.config.max_segment_bytes;
        let write = (|| {
            let end = open.len + written;
            // Where the bytes written reach: direct writes pad to whole blocks with zeros.
            let written_to = match &mut open.direct {
                Some(direct) => direct.write(&open.file, open.len, group)?,
                None => {
                    write_all_vectored(&mut open.file, group)?;
                    end
                }
            };
            if written_to > open.allocated {
                // Zero-fill ahead; this commit's fdatasync flushes the new size and blocks once,
                // and the commits after it overwrite in place.
                let step = format::PREALLOCATE_BYTES;
                let target = end.max((end / step + 1).saturating_mul(step).min(max_segment_bytes));
                let target = round_up(target.max(written_to), BLOCK as u64);
                zero_fill(&open.file, written_to, target)?;
                open.allocated = target;
            }
            open.file.sync_data()
        })();
        match write {
            Ok(()) => {
                if let Some(direct) = &mut open.direct {
                    direct.committed(open.len, open.len + written);
                }
                open.len += written;
                open.first_record_at.get_or_insert_with(Instant::now);
                self.shared.depth_bytes.fetch_add(written, Ordering::Relaxed);
                // Half full: a stream this busy will need its next segment soon.
                if !open.spare_requested && open.len >= max_segment_bytes / 2 {
                    open.spare_requested = true;
                    if let Some(preparer) = &self.preparer {
                        preparer.request();
                    }
                }
                Ok(())
            }
            Err(error) => {
                // Nothing of this group is acknowledged. Cut the segment back to its last
                // acknowledged byte so later records stay readable; if even that fails, abandon
                // the segment (recovery truncates its tail) and start a new one next time.
                let restored = open
                    .file
                    .set_len(before)
                    .and_then(|()| open.file.sync_all())
                    .and_then(|()| open.file.seek(io::SeekFrom::Start(before)).map(drop));
                match restored {
                    Ok(()) => open.allocated = before,
                    Err(_) => self.open = None,
                }
                Err(error)
            }
        }
    }

    fn open_new_segment(&mut self) -> io::Result<()> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let id = (u64::try_from(now).unwrap_or(u64::MAX)).max(self.last_id + 1);
        let spare = self.preparer.as_ref().and_then(Preparer::take);
        let activated = spare.map(|spare| self.activate_spare(spare, id)).transpose().unwrap_or_else(|error| {
            tracing::warn!(%error, dir = %self.config.dir.display(), "could not use the prepared spool segment; creating one");
            None
        });
        let (file, direct, allocated) = match activated {
            Some(activated) => activated,
            None => {
                let mut file = format::create_segment(&self.config.dir, id)?;
                let mut direct = None;
                if self.config.direct_io {
                    let path = format::segment_path(&self.config.dir, id, OPEN_SUFFIX);
                    if let Some(direct_file) = DirectIo::open(&path)? {
                        file = direct_file;
                        direct = Some(DirectIo::new(format::MAGIC));
                    }
                }
                (file, direct, format::MAGIC.len() as u64)
            }
        };
        self.last_id = id;
        self.shared.depth_segments.fetch_add(1, Ordering::Relaxed);
        self.shared.depth_bytes.fetch_add(format::MAGIC.len() as u64, Ordering::Relaxed);
        self.open = Some(OpenSegment {
            id,
            file,
            direct,
            len: format::MAGIC.len() as u64,
            allocated,
            first_record_at: None,
            spare_requested: false,
        });
        Ok(())
    }

    /// Makes the prepared spare segment `id`: renamed to `<id>.open`, durably, before any record
    /// is written to it. Returns its file (cursor after the header), direct-I/O state and length.
    fn activate_spare(&self, spare: Spare, id: u64) -> io::Result<(File, Option<DirectIo>, u64)> {
        let path = format::segment_path(&self.config.dir, id, OPEN_SUFFIX);
        std::fs::rename(self.config.dir.join(format::SPARE_FILE), &path)?;
        let activated = format::sync_dir(&self.config.dir).and_then(|()| {
            if spare.direct && self.config.direct_io {
                return Ok((spare.file, Some(DirectIo::new(format::MAGIC)), spare.len));
            }
            let mut file = File::options().write(true).open(&path)?;
            file.seek(io::SeekFrom::Start(format::MAGIC.len() as u64))?;
            Ok((file, None, spare.len))
        });
        if activated.is_err() {
            // Free the id for the segment created instead; the file holds no record.
            let _ = std::fs::remove_file(&path);
        }
        activated
    }

    fn rotate_if_due(&mut self) {
        let due = self.open.as_ref().is_some_and(|open| {
            open.len >= self.config.max_segment_bytes
                || open.first_record_at.is_some_and(|t| t.elapsed() >= self.config.max_segment_age)
        });
        if due && let Err(error) = self.seal_open() {
            tracing::error!(%error, "could not seal a spool segment; it stays open and is recovered later");
        }
    }

    fn seal_open(&mut self) -> io::Result<()> {
        let Some(open) = self.open.take() else { return Ok(()) };
        if open.first_record_at.is_none() {
            drop(open.file);
            std::fs::remove_file(format::segment_path(&self.config.dir, open.id, OPEN_SUFFIX))?;
            return format::sync_dir(&self.config.dir);
        }
        if open.allocated > open.len {
            open.file.set_len(open.len)?;
        }
        open.file.sync_all()?;
        drop(open.file);
        format::seal(&self.config.dir, open.id)?;
        metrics::counter!("clickstream_spool_segments_sealed_total").increment(1);
        Ok(())
    }
}

/// Writes every payload of `group` at the file's cursor with as few `writev` calls as the
/// kernel allows (one, normally).
fn write_all_vectored(file: &mut File, group: &[Append]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = group.iter().map(|a| IoSlice::new(&a.payload)).collect();
    let mut remaining = &mut slices[..];
    while !remaining.is_empty() {
        match file.write_vectored(remaining) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut remaining, n),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Takes the stream's writer lock, waiting up to `wait` while another process holds it.
///
/// Readers hold the lock only while they seal an abandoned segment (milliseconds to a second);
/// a writer holds it for as long as it runs. Waiting, bounded, tells the two apart.
fn lock_stream(dir: &Path, wait: Duration) -> io::Result<File> {
    let lock = File::options().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
    let started = Instant::now();
    let mut logged = false;
    loop {
        match lock.try_lock() {
            Ok(()) => {
                if logged {
                    tracing::info!(dir = %dir.display(), waited_ms = started.elapsed().as_millis() as u64, "took the spool lock");
                }
                return Ok(lock);
            }
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(error)) => return Err(error),
        }
        if started.elapsed() >= wait {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "another process has been writing the spool at {} for {} ms; \
                     one collector per spool directory",
                    dir.display(),
                    wait.as_millis()
                ),
            ));
        }
        if !logged {
            tracing::warn!(
                dir = %dir.display(),
                wait_ms = wait.as_millis() as u64,
                "the spool lock is held (a batcher sealing a previous writer's segment, or another \
                 collector); waiting"
            );
            logged = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 64 KiB of zeros on a [`BLOCK`] boundary, so direct writes can use them too.
#[repr(C, align(4096))]
struct Zeros([u8; 64 * 1024]);

static ZEROS: Zeros = Zeros([0; 64 * 1024]);

/// Writes zeros over `[from, to)` without moving the file's cursor. For a direct-I/O file both
/// ends must be block-aligned (every chunk then is).
fn zero_fill(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeros = &ZEROS.0;
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).unwrap_or(usize::MAX).min(zeros.len());
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// `EINVAL`, what Linux answers an `O_DIRECT` open or write that the filesystem cannot do.
const EINVAL: i32 = 22;

/// The block size direct writes are aligned to: a multiple of every common device's logical
/// block size (512 or 4096 bytes).
const BLOCK: usize = 4096;

fn round_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// A zeroed byte buffer whose usable part starts on a [`BLOCK`] boundary, as `O_DIRECT` needs.
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn zeroed(len: usize) -> Self {
        let storage = vec![0; len + BLOCK];
        let start = storage.as_ptr().align_offset(BLOCK).min(BLOCK);
        Self { storage, start, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Writing an open segment through `O_DIRECT`: the segment's last partial block lives at the
/// start of an aligned staging buffer, and a commit writes that block plus the group's records,
/// padded with zeros to whole blocks, in one `pwrite`.
struct DirectIo {
    /// `staging[..len % BLOCK]` holds the segment's bytes from its last block boundary on.
    staging: AlignedBuf,
}

impl DirectIo {
    /// Opens `path` for direct writes; `None` when its filesystem does not take `O_DIRECT`.
    #[cfg(target_os = "linux")]
    fn open(path: &Path) -> io::Result<Option<File>> {
        use std::os::unix::fs::OpenOptionsExt;
        match File::options().write(true).custom_flags(libc::O_DIRECT).open(path) {
            Ok(file) => Ok(Some(file)),
            Err(error) if error.raw_os_error() == Some(EINVAL) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Direct writes are implemented for Linux; elsewhere the page cache is used.
    #[cfg(not(target_os = "linux"))]
    fn open(_path: &Path) -> io::Result<Option<File>> {
        Ok(None)
    }

    /// State for a segment whose bytes so far are `written` (its header).
    fn new(written: &[u8]) -> Self {
        let mut staging = AlignedBuf::zeroed(64 * 1024);
        staging.bytes_mut()[..written.len()].copy_from_slice(written);
        Self { staging }
    }

    /// Writes the group's payloads after the segment's first `len` bytes; returns the offset
    /// the write reached (a block boundary). Until [`committed`](Self::committed) the staging
    /// buffer's tail block still describes `len`, so a failed commit can simply be retried.
    fn write(&mut self, file: &File, len: u64, group: &[Append]) -> io::Result<u64> {
        let tail = (len % BLOCK as u64) as usize;
        let payload: usize = group.iter().map(|a| a.payload.len()).sum();
        let padded = round_up((tail + payload) as u64, BLOCK as u64) as usize;
        if padded > self.staging.len {
            let mut grown = AlignedBuf::zeroed(padded.next_power_of_two());
            grown.bytes_mut()[..tail].copy_from_slice(&self.staging.bytes()[..tail]);
            self.staging = grown;
        }
        let staging = self.staging.bytes_mut();
        let mut at = tail;
        for append in group {
            staging[at..at + append.payload.len()].copy_from_slice(&append.payload);
            at += append.payload.len();
        }
        staging[at..padded].fill(0);
        let block_start = len - tail as u64;
        file.write_all_at(&staging[..padded], block_start)?;
        Ok(block_start + padded as u64)
    }

    /// The segment grew from `old_len` to `new_len` bytes: keep its new last partial block.
    fn committed(&mut self, old_len: u64, new_len: u64) {
        let old_block = old_len - old_len % BLOCK as u64;
        let new_block = new_len - new_len % BLOCK as u64;
        let from = (new_block - old_block) as usize;
        let tail = (new_len % BLOCK as u64) as usize;
        self.staging.bytes_mut().copy_within(from..from + tail, 0);
    }
}
