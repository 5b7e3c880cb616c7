//! Preparing a busy stream's next segment before it is needed.
//!
//! A commit that has to extend its segment writes [`format::PREALLOCATE_BYTES`] of zeros first,
//! and its `fdatasync` then flushes the file's new size and blocks as well. On the VM where
//! `make bench` runs such a commit took 1–4 ms instead of about 0.1 ms; under load there was one
//! every MiB of records, about thirty a second, and every request queued behind it waited while
//! the CPUs had nothing to do. So once the open segment is half full, a helper thread writes the
//! next one in full — the header, then zeros to the segment size plus one extension step —
//! fsyncs it as [`format::SPARE_FILE`], and the writer renames it into place when it rotates.
//! Commits into it only ever overwrite allocated space. A stream that never fills half a
//! segment before sealing it by age gets no spare and extends its segments as before, so a quiet
//! stream (the dead-letter one, usually) costs no disk space ahead.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::{AlignedBuf, BLOCK, DirectIo, EINVAL, round_up};
use crate::spool::format;

/// Bytes the helper writes per call: small enough that a commit's write queued behind one waits
/// little, large enough that preparing 32 MiB costs a few milliseconds of CPU.
const CHUNK: usize = 256 * 1024;

/// A prepared segment: [`format::SPARE_FILE`], complete and durable.
pub(super) struct Spare {
    /// Open for writing; with `O_DIRECT` when `direct`.
    pub(super) file: File,
    /// Its length: header and zeros.
    pub(super) len: u64,
    /// Whether `file` was opened with `O_DIRECT`.
    pub(super) direct: bool,
}

#[derive(Default)]
struct Slot {
    /// The writer asked for a spare and none is ready yet.
    wanted: bool,
    ready: Option<Spare>,
}

struct Shared {
    slot: Mutex<Slot>,
    wake: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The helper thread of one stream.
pub(super) struct Preparer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Preparer {
    /// Starts the helper for the stream in `dir`; it prepares spares of `len` bytes (a multiple
    /// of the block size) when asked.
    pub(super) fn start(dir: PathBuf, len: u64, direct_io: bool) -> io::Result<Self> {
        let shared = Arc::new(Shared { slot: Mutex::default(), wake: Condvar::new(), stop: AtomicBool::new(false) });
        let helper = shared.clone();
        let thread = std::thread::Builder::new()
            .name("spool-prepare".into())
            .spawn(move || run(&helper, &dir, len, direct_io))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Asks for a spare, unless one is ready or being prepared.
    pub(super) fn request(&self) {
        let mut slot = self.shared.slot();
        if slot.ready.is_none() && !slot.wanted {
            slot.wanted = true;
            self.shared.wake.notify_one();
        }
    }

    /// The spare, when one is ready.
    pub(super) fn take(&self) -> Option<Spare> {
        self.shared.slot().ready.take()
    }

    /// Stops the helper (abandoning a spare it is writing) and deletes any spare.
    pub(super) fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared, dir: &Path, len: u64, direct_io: bool) {
    let path = dir.join(format::SPARE_FILE);
    loop {
        {
            let mut slot = shared.slot();
            while !slot.wanted && !shared.stop.load(Ordering::Relaxed) {
                slot = shared.wake.wait(slot).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let prepared = prepare(&path, len, direct_io, &shared.stop);
        let mut slot = shared.slot();
        slot.wanted = false;
        match prepared {
            Ok(spare) => slot.ready = Some(spare),
            Err(error) => {
                drop(slot);
                if !shared.stop.load(Ordering::Relaxed) {
                    tracing::warn!(%error, dir = %dir.display(), "could not prepare the next spool segment; extending segments as they fill instead");
                }
                let _ = fs::remove_file(&path);
            }
        }
    }
    drop(shared.slot().ready.take());
    let _ = fs::remove_file(&path);
}

/// Writes the spare at `path`: header, zeros to `len`, fsync'd.
fn prepare(path: &Path, len: u64, direct_io: bool, stop: &AtomicBool) -> io::Result<Spare> {
    let file = File::options().create(true).truncate(true).write(true).open(path)?;
    if direct_io && let Some(direct) = DirectIo::open(path)? {
        match fill(&direct, len, stop) {
            Ok(()) => {
                direct.sync_all()?;
                return Ok(Spare { file: direct, len, direct: true });
            }
            // The filesystem took O_DIRECT at open but refuses the writes: use the page cache.
            Err(error) if error.raw_os_error() == Some(EINVAL) => {}
            Err(error) => return Err(error),
        }
    }
    fill(&file, len, stop)?;
    file.sync_all()?;
    Ok(Spare { file, len, direct: false })
}

/// Writes the magic header and zeros over `[0, len)` in block-aligned chunks.
fn fill(file: &File, len: u64, stop: &AtomicBool) -> io::Result<()> {
    let mut chunk = AlignedBuf::zeroed(CHUNK);
    chunk.bytes_mut()[..format::MAGIC.len()].copy_from_slice(format::MAGIC);
    let first = round_up(len.min(CHUNK as u64), BLOCK as u64) as usize;
    file.write_all_at(&chunk.bytes()[..first], 0)?;
    chunk.bytes_mut()[..format::MAGIC.len()].fill(0);
    let mut at = first as u64;
    while at < len {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "the writer is shutting down"));
        }
        let n = (len - at).min(CHUNK as u64) as usize;
        file.write_all_at(&chunk.bytes()[..n], at)?;
        at += n as u64;
    }
    Ok(())
}
