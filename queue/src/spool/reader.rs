//! The spool reader: how the batcher consumes sealed segments.
//!
//! ```text
//! let reader = SpoolReader::open(dir)?;
//! reader.recover_abandoned()?;                 // seal what a dead collector left open
//! while let Some(segment) = reader.claim_next()? {
//!     let records = segment.read()?;           // every record, checksums verified
//!     write_somewhere_durable(&records)?;
//!     segment.mark_done()?;                    // only now is the segment deleted
//! }
//! ```
//!
//! A claim is an exclusive advisory lock on the segment file, so two batchers never process the
//! same segment at once, and a batcher that dies releases its claim with its process. Until
//! [`ClaimedSegment::mark_done`] the segment stays on disk: a crash at any point means the
//! segment is claimed again and processed again, never lost. Processing must therefore be
//! idempotent per segment — the batcher names its output after [`ClaimedSegment::id`].

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::format::{self, LOCK_FILE, OPEN_SUFFIX, SEALED_SUFFIX, ScanEnd};

/// Consumes the sealed segments of one spool stream.
#[derive(Clone, Debug)]
pub struct SpoolReader {
    dir: PathBuf,
}

/// A segment this process has claimed.
#[derive(Debug)]
pub struct ClaimedSegment {
    id: u64,
    path: PathBuf,
    dir: PathBuf,
    _lock: File,
}

/// A sealed segment whose records fail their checksums.
#[derive(Debug, thiserror::Error)]
#[error("spool segment {path} is corrupt at byte {offset}: {reason}")]
pub struct CorruptSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the first bad record.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl SpoolReader {
    /// A reader of the stream in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The stream directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Seals the segments of a writer that is no longer running (crashed or stopped without
    /// sealing). Does nothing while a writer holds the stream's lock. Returns how many segments
    /// were sealed.
    pub fn recover_abandoned(&self) -> io::Result<usize> {
        if format::list_segments(&self.dir, OPEN_SUFFIX)?.is_empty() {
            return Ok(0);
        }
        let lock = File::options().create(true).truncate(false).write(true).open(self.dir.join(LOCK_FILE))?;
        if lock.try_lock().is_err() {
            return Ok(0);
        }
        format::seal_abandoned(&self.dir)
    }

    /// Ids of the sealed segments waiting to be consumed, oldest first.
    pub fn sealed(&self) -> io::Result<Vec<u64>> {
        format::list_segments(&self.dir, SEALED_SUFFIX)
    }

    /// Claims the oldest sealed segment no other reader holds, if any.
    pub fn claim_next(&self) -> io::Result<Option<ClaimedSegment>> {
        for id in self.sealed()? {
            if let Some(claimed) = self.claim(id)? {
                return Ok(Some(claimed));
            }
        }
        Ok(None)
    }

    /// Claims segment `id`; `None` when another reader holds it or it is already consumed.
    pub fn claim(&self, id: u64) -> io::Result<Option<ClaimedSegment>> {
        let path = format::segment_path(&self.dir, id, SEALED_SUFFIX);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        if file.try_lock().is_err() {
            return Ok(None);
        }
        // Another reader may have finished and deleted the segment between our open and our
        // lock; then we hold a lock on an unlinked file. Check the name still points at it.
        let still_there = match fs::metadata(&path) {
            Ok(on_disk) => same_file(&on_disk, &file.metadata()?),
            Err(error) if error.kind() == io::ErrorKind::NotFound => false,
            Err(error) => return Err(error),
        };
        if !still_there {
            return Ok(None);
        }
        Ok(Some(ClaimedSegment { id, path, dir: self.dir.clone(), _lock: file }))
    }
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

impl ClaimedSegment {
    /// The segment's id: stable across reprocessing, unique for the life of the spool.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record, in append order, checksums verified.
    pub fn read(&self) -> Result<Vec<Vec<u8>>, io::Error> {
        let scan = format::scan(&self.path)?;
        match scan.end {
            // Sealing cuts off the padding; zeros after the records are harmless either way.
            ScanEnd::Clean | ScanEnd::Padding { .. } => Ok(scan.records),
            ScanEnd::Damaged { offset, reason } => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                CorruptSegment { path: self.path.clone(), offset, reason },
            )),
        }
    }

    /// Deletes the segment: call only once its records are durably stored elsewhere.
    pub fn mark_done(self) -> io::Result<()> {
        fs::remove_file(&self.path)?;
        format::sync_dir(&self.dir)
    }

    /// Moves a corrupt segment aside to `quarantine/` so it no longer blocks the stream, keeping
    /// it for inspection. Returns its new path.
    pub fn quarantine(self) -> io::Result<PathBuf> {
        let quarantine = self.dir.join("quarantine");
        fs::create_dir_all(&quarantine)?;
        let target = quarantine.join(self.path.file_name().unwrap_or_default());
        fs::rename(&self.path, &target)?;
        format::sync_dir(&self.dir)?;
        Ok(target)
    }

    /// Releases the claim without consuming the segment.
    pub fn release(self) {}
}
