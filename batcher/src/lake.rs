//! The lake: one object-store API over a local directory (embedded default) and a GCS bucket.
//!
//! Layout under the lake root:
//!
//! ```text
//! events/dt=YYYY-MM-DD/hour=HH/<name>.parquet   hourly event files (hour of event_time, UTC)
//! events/dt=YYYY-MM-DD/hour=HH/_manifest.json   written by compaction
//! dead-letter/dt=YYYY-MM-DD/<name>.jsonl         queue messages the batcher could not decode
//! ```
//!
//! Writes are atomic: a reader never sees a partial object. Locally an object is written to a
//! hidden temporary file in the same directory, fsync'd, renamed (or, for
//! [`Lake::put_if_absent`], hard-linked: create-exclusive) into place and the directory fsync'd;
//! on GCS an object becomes visible only when its upload completes.
//!
//! **Errors carry a kind** ([`LakeError::kind`]): [`ErrorKind::Transient`] (a timeout, a reset or
//! refused connection, HTTP 408/429/5xx — the same call may succeed later), [`ErrorKind::NotFound`]
//! and [`ErrorKind::Permanent`] (HTTP 400/401/403/412, a bad configuration — retrying will not
//! help). Each error names the operation and the object (`get gs://bucket/path`) and keeps the
//! underlying error as its [`source`](std::error::Error::source).
//!
//! **GCS calls are retried** with exponential backoff and jitter (`backon`) on transient errors
//! only, and every attempt has a deadline, so a stalled request times out and is retried instead
//! of hanging: see `GcsSettings`. Writes go through Google's official `google-cloud-storage`
//! crate (multipart and resumable uploads, CRC32C checksums, `ifGenerationMatch` preconditions),
//! with the crate's own retry loop turned off so that one policy, with attempt deadlines the
//! crate does not have, governs every call. Reads, listings and deletions use three documented
//! JSON-API calls of the same service instead (authenticated with the same credentials), because
//! the crate (v1.21) lists and deletes only over the gRPC `google.storage.v2` service, which
//! neither GCS emulator serves, and its reader rejects answers without an `x-goog-generation`
//! header, which `gcp-storage-emulator` omits.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// A boxed error kept as the source of a [`LakeError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An object's name, size and version.
///
/// Ordered by path first (then size, then version).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectMeta {
    /// Path relative to the lake root, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// What changes whenever the object is rewritten, even with the same name and size: the GCS
    /// object `generation`, or a local file's modification time in nanoseconds since the Unix
    /// epoch, as a decimal string. `None` when the store did not say.
    pub version: Option<String>,
}

/// What a caller can do about a failed lake call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The same call may succeed later: a timeout, a reset or refused connection, HTTP 408, 429
    /// or 5xx, a disk that is full for now. Retry, nack, or exit with "try again".
    Transient,
    /// The object does not exist.
    NotFound,
    /// Retrying the same call will not help: HTTP 400/401/403/412, a missing bucket, a bad
    /// configuration, a failed internal task.
    Permanent,
}

impl ErrorKind {
    /// True when the same call may succeed later.
    pub fn is_retryable(self) -> bool {
        self == ErrorKind::Transient
    }

    /// The kind of an HTTP error status from an object store.
    pub fn of_http_status(status: u16) -> Self {
        match status {
            404 => ErrorKind::NotFound,
            408 | 429 | 500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }

    /// The kind of a local I/O error.
    pub fn of_io(kind: std::io::ErrorKind) -> Self {
        use std::io::ErrorKind as Io;
        match kind {
            Io::NotFound => ErrorKind::NotFound,
            Io::TimedOut
            | Io::Interrupted
            | Io::WouldBlock
            | Io::StorageFull
            | Io::QuotaExceeded
            | Io::ResourceBusy
            | Io::ConnectionReset
            | Io::ConnectionRefused
            | Io::ConnectionAborted
            | Io::BrokenPipe
            | Io::UnexpectedEof => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Transient => "transient",
            ErrorKind::NotFound => "not found",
            ErrorKind::Permanent => "permanent",
        })
    }
}

/// A lake call, as named in errors, logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Opening the lake.
    Connect,
    /// [`Lake::put`].
    Put,
    /// [`Lake::put_if_absent`].
    PutIfAbsent,
    /// [`Lake::get`].
    Get,
    /// [`Lake::list`].
    List,
    /// [`Lake::delete`].
    Delete,
}

impl Operation {
    /// Short name: `put`, `put-if-absent`, `get`, `list`, `delete`, `connect`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Connect => "connect",
            Operation::Put => "put",
            Operation::PutIfAbsent => "put-if-absent",
            Operation::Get => "get",
            Operation::List => "list",
            Operation::Delete => "delete",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a lake call failed. [`kind`](Self::kind) says whether retrying may help; the message
/// names the operation and the object, and the underlying error is the
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The object does not exist.
    #[error("{operation} {location}: no such object")]
    NotFound {
        /// The call.
        operation: Operation,
        /// The object (`gs://bucket/path` or a local path).
        location: String,
    },
    /// Local I/O failed.
    #[error("{operation} {location}: local I/O failed")]
    Io {
        /// The call.
        operation: Operation,
        /// The file or folder.
        location: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The object store answered with an HTTP error status.
    #[error("{operation} {location}: the object store answered HTTP {status}")]
    Status {
        /// The call.
        operation: Operation,
        /// The object.
        location: String,
        /// The HTTP status.
        status: u16,
        /// What to do about it (from the status, in the context of the call).
        kind: ErrorKind,
        /// The store's answer ([`ServiceAnswer`]) or the client library's error.
        #[source]
        source: BoxError,
    },
    /// The object store could not be reached, or the connection failed or stalled before the
    /// answer was complete. Always transient.
    #[error("{operation} {location}: the connection to the object store failed")]
    Transport {
        /// The call.
        operation: Operation,
        /// The object.
        location: String,
        /// The error.
        #[source]
        source: BoxError,
    },
    /// An attempt went past its deadline (`GcsSettings`). Always transient.
    #[error("{operation} {location}: no complete answer within {after:?}")]
    TimedOut {
        /// The call.
        operation: Operation,
        /// The object.
        location: String,
        /// The deadline.
        after: Duration,
    },
    /// The call failed in another way: credentials, an answer that could not be decoded, a
    /// client that could not be built.
    #[error("{operation} {location}: {what}")]
    Remote {
        /// The call.
        operation: Operation,
        /// The object, bucket or prefix.
        location: String,
        /// What failed.
        what: &'static str,
        /// What to do about it.
        kind: ErrorKind,
        /// The error.
        #[source]
        source: BoxError,
    },
    /// The lake's URL names a store this binary was built without (a `gs://` lake in a build
    /// without the `gcp` feature). Permanent.
    #[error("{location}: {message}")]
    Unsupported {
        /// The lake URL.
        location: String,
        /// What to do instead.
        message: &'static str,
    },
    /// A task of the caller failed (a blocking task panicked or was cancelled). Permanent.
    #[error("an internal task failed")]
    Internal {
        /// The error (e.g. a `tokio::task::JoinError`).
        #[source]
        source: BoxError,
    },
}

impl LakeError {
    /// An internal failure around lake calls, such as a blocking task that panicked:
    /// `.map_err(LakeError::internal)`. Permanent.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        LakeError::Internal { source: source.into() }
    }

    /// What a caller can do about this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LakeError::NotFound { .. } => ErrorKind::NotFound,
            LakeError::Io { source, .. } => ErrorKind::of_io(source.kind()),
            LakeError::Status { kind, .. } | LakeError::Remote { kind, .. } => *kind,
            LakeError::Transport { .. } | LakeError::TimedOut { .. } => ErrorKind::Transient,
            LakeError::Internal { .. } | LakeError::Unsupported { .. } => ErrorKind::Permanent,
        }
    }

    /// True when the same call may succeed later ([`ErrorKind::Transient`]).
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// True when the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// The HTTP status the object store answered, if it answered with one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            LakeError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The call that failed, unless the failure was internal.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            LakeError::NotFound { operation, .. }
            | LakeError::Io { operation, .. }
            | LakeError::Status { operation, .. }
            | LakeError::Transport { operation, .. }
            | LakeError::TimedOut { operation, .. }
            | LakeError::Remote { operation, .. } => Some(*operation),
            LakeError::Internal { .. } | LakeError::Unsupported { .. } => None,
        }
    }
}

/// An object store's error answer, kept as the source of [`LakeError::Status`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status}{}: {message}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
pub struct ServiceAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The first `errors[].reason` of a JSON error body (`rateLimitExceeded`, `forbidden`).
    pub reason: Option<String>,
    /// The `error.message` of a JSON error body, or the start of the body.
    pub message: String,
}

impl ServiceAnswer {
    /// Reads a GCS JSON-API error body:
    /// `{"error":{"code":403,"message":"…","errors":[{"reason":"…"}]}}`.
    pub fn parse(status: u16, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            error: Detail,
        }
        #[derive(serde::Deserialize)]
        struct Detail {
            #[serde(default)]
            message: String,
            #[serde(default)]
            errors: Vec<Reason>,
        }
        #[derive(serde::Deserialize)]
        struct Reason {
            reason: Option<String>,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(parsed) => ServiceAnswer {
                status,
                reason: parsed.error.errors.into_iter().find_map(|e| e.reason),
                message: parsed.error.message,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let message: String = text.trim().chars().take(300).collect();
                ServiceAnswer { status, reason: None, message }
            }
        }
    }
}

fn io(operation: Operation, path: &Path) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io { operation, location: path.display().to_string(), source }
}

/// Where Parquet files and dead letters are stored.
#[async_trait]
pub trait Lake: Send + Sync {
    /// Stores `data` at `path` atomically and durably, replacing any object there.
    async fn put(&self, path: &str, data: Bytes) -> Result<(), LakeError>;
    /// Stores `data` at `path` atomically and durably unless an object is already there:
    /// returns `true` when this call created the object, `false` when one existed (left as it
    /// was). When an attempt's answer was lost and a retry finds the object, it is read back:
    /// identical bytes mean the lost attempt created it (`true`).
    async fn put_if_absent(&self, path: &str, data: Bytes) -> Result<bool, LakeError>;
    /// Reads a whole object.
    async fn get(&self, path: &str) -> Result<Bytes, LakeError>;
    /// Every object whose path starts with `prefix`, sorted by path.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, LakeError>;
    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, path: &str) -> Result<(), LakeError>;
    /// The lake's location, for logs (`/path/to/lake`, `gs://bucket/prefix`).
    fn describe(&self) -> String;
}

#[cfg(feature = "gcp")]
mod gcs;
#[cfg(feature = "gcp")]
pub use gcs::{GcsLake, GcsSettings};

/// Opens the lake at `url`: `gs://bucket[/prefix]` or a local directory path.
pub async fn open(url: &str) -> Result<Box<dyn Lake>, LakeError> {
    match url.strip_prefix("gs://") {
        #[cfg(feature = "gcp")]
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let emulator = std::env::var("STORAGE_EMULATOR_HOST").ok().filter(|h| !h.is_empty());
            Ok(Box::new(GcsLake::connect(bucket, prefix, emulator).await?))
        }
        #[cfg(not(feature = "gcp"))]
        Some(_) => Err(LakeError::Unsupported {
            location: url.to_owned(),
            message: "this binary was built without GCS support (cargo feature `gcp`, on by default); \
                      rebuild it with `--features gcp`, or give a local directory",
        }),
        None => Ok(Box::new(LocalLake::new(url.strip_prefix("file://").unwrap_or(url)))),
    }
}

/// The folder of one hour's event files, e.g. `events/dt=2026-11-24/hour=10/`.
pub fn hour_prefix(hour: DateTime<Utc>) -> String {
    format!("events/dt={:04}-{:02}-{:02}/hour={:02}/", hour.year(), hour.month(), hour.day(), hour.hour())
}

/// The hour an event-file path belongs to, parsed back from its folder names.
pub fn hour_of_path(path: &str) -> Option<DateTime<Utc>> {
    let rest = path.strip_prefix("events/dt=")?;
    let (date, rest) = rest.split_once("/hour=")?;
    let (hour, _) = rest.split_once('/')?;
    let text = format!("{date}T{hour}:00:00Z");
    text.parse().ok()
}

/// A lake in a local directory.
#[derive(Clone, Debug)]
pub struct LocalLake {
    root: PathBuf,
}

impl LocalLake {
    /// The lake rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// How [`put_local`] moves the fsync'd temporary file into place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// `rename`: replaces any file there.
    Replace,
    /// `link` then unlink the temporary: fails with `AlreadyExists` if a file is there.
    Exclusive,
}

/// Writes `data` to `full` atomically and durably; `Ok(false)` when `placement` is
/// [`Placement::Exclusive`] and a file was already there.
fn put_local(full: &Path, data: &[u8], placement: Placement) -> std::io::Result<bool> {
    use std::io::Write;
    let dir = full.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = full.file_name().and_then(|n| n.to_str()).unwrap_or("object");
    let temporary = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(data)?;
        file.sync_all()?;
        let created = match placement {
            Placement::Replace => {
                std::fs::rename(&temporary, full)?;
                true
            }
            // A hard link is the portable create-exclusive rename: it never replaces a file.
            Placement::Exclusive => match std::fs::hard_link(&temporary, full) {
                Ok(()) => true,
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(error) => return Err(error),
            },
        };
        sync_dir(dir)?;
        Ok(created)
    })();
    if result.is_err() || placement == Placement::Exclusive {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// A file's modification time in nanoseconds since the Unix epoch, as a decimal string.
fn modified_nanos(metadata: &std::fs::Metadata) -> Option<String> {
    let modified = metadata.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(since.as_nanos().to_string())
}

fn list_local(root: &Path, dir: &Path, out: &mut Vec<ObjectMeta>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // temporary files of writes in progress
        }
        if entry.file_type()?.is_dir() {
            list_local(root, &path, out)?;
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let relative = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            let metadata = entry.metadata()?;
            out.push(ObjectMeta { path: relative, size: metadata.len(), version: modified_nanos(&metadata) });
        }
    }
    Ok(())
}

impl LocalLake {
    async fn put_with(
        &self,
        operation: Operation,
        path: &str,
        data: Bytes,
        placement: Placement,
    ) -> Result<bool, LakeError> {
        let full = self.full(path);
        tokio::task::spawn_blocking(move || put_local(&full, &data, placement).map_err(|e| io(operation, &full)(e)))
            .await
            .map_err(LakeError::internal)?
    }
}

#[async_trait]
impl Lake for LocalLake {
    async fn put(&self, path: &str, data: Bytes) -> Result<(), LakeError> {
        self.put_with(Operation::Put, path, data, Placement::Replace).await.map(|_| ())
    }

    async fn put_if_absent(&self, path: &str, data: Bytes) -> Result<bool, LakeError> {
        self.put_with(Operation::PutIfAbsent, path, data, Placement::Exclusive).await
    }

    async fn get(&self, path: &str) -> Result<Bytes, LakeError> {
        let full = self.full(path);
        match tokio::fs::read(&full).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(LakeError::NotFound { operation: Operation::Get, location: full.display().to_string() })
            }
            Err(error) => Err(io(Operation::Get, &full)(error)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, LakeError> {
        // Walk from the deepest existing folder of the prefix, then filter by the full prefix.
        let folder = prefix.rsplit_once('/').map(|(folder, _)| folder).unwrap_or("");
        let root = self.root.clone();
        let start = self.full(folder);
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            list_local(&root, &start, &mut out).map_err(io(Operation::List, &start))?;
            out.retain(|o| o.path.starts_with(&prefix));
            out.sort();
            Ok(out)
        })
        .await
        .map_err(LakeError::internal)?
    }

    async fn delete(&self, path: &str) -> Result<(), LakeError> {
        let full = self.full(path);
        match tokio::fs::remove_file(&full).await {
            Ok(()) => {
                if let Some(dir) = full.parent() {
                    sync_dir(dir).map_err(io(Operation::Delete, dir))?;
                }
                Ok(())
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io(Operation::Delete, &full)(error)),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_puts_are_atomic_listable_and_deletable() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LocalLake::new(dir.path());
        lake.put("events/dt=2026-11-24/hour=10/a.parquet", Bytes::from_static(b"one")).await.unwrap();
        lake.put("events/dt=2026-11-24/hour=11/b.parquet", Bytes::from_static(b"two")).await.unwrap();
        lake.put("events/dt=2026-11-24/hour=10/a.parquet", Bytes::from_static(b"three")).await.unwrap();
        // A write in progress is invisible.
        std::fs::write(dir.path().join("events/dt=2026-11-24/hour=10/.c.parquet.tmp"), b"partial").unwrap();
        let listed = lake.list("events/dt=2026-11-24/hour=10/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].path.as_str(), listed[0].size), ("events/dt=2026-11-24/hour=10/a.parquet", 5));
        assert_eq!(lake.list("events/").await.unwrap().len(), 2);
        assert_eq!(lake.get("events/dt=2026-11-24/hour=10/a.parquet").await.unwrap(), "three");
        lake.delete("events/dt=2026-11-24/hour=10/a.parquet").await.unwrap();
        lake.delete("events/dt=2026-11-24/hour=10/a.parquet").await.unwrap();
        let missing = lake.get("events/dt=2026-11-24/hour=10/a.parquet").await.unwrap_err();
        assert!(matches!(missing, LakeError::NotFound { operation: Operation::Get, .. }), "{missing:?}");
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert!(!missing.is_retryable());
        assert!(missing.to_string().contains("a.parquet"), "{missing}");
        assert!(lake.list("nothing/here/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_local_listing_versions_each_file_by_its_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LocalLake::new(dir.path());
        lake.put("events/a.parquet", Bytes::from_static(b"same size")).await.unwrap();
        let before = lake.list("events/").await.unwrap().remove(0);
        let modified = std::fs::metadata(dir.path().join("events/a.parquet")).unwrap().modified().unwrap();
        let nanos = modified.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        assert_eq!(before.version, Some(nanos.to_string()));
        // A rewrite with the same name and size is a new version (the mtime clock may be coarse).
        std::thread::sleep(Duration::from_millis(20));
        lake.put("events/a.parquet", Bytes::from_static(b"same-size")).await.unwrap();
        let after = lake.list("events/").await.unwrap().remove(0);
        assert_eq!((after.path.as_str(), after.size), (before.path.as_str(), before.size));
        assert_ne!(after.version, before.version);
    }

    #[tokio::test]
    async fn a_local_put_if_absent_creates_once_and_leaves_the_first_object() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LocalLake::new(dir.path());
        assert!(lake.put_if_absent("locks/hour.json", Bytes::from_static(b"first")).await.unwrap());
        assert!(!lake.put_if_absent("locks/hour.json", Bytes::from_static(b"second")).await.unwrap());
        assert_eq!(lake.get("locks/hour.json").await.unwrap(), "first");
        // No temporary file is left behind, and the listing holds the one object.
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("locks")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("hour.json")]);
        // Concurrent creators: exactly one wins.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let lake = lake.clone();
            tasks
                .push(tokio::spawn(async move { lake.put_if_absent("locks/race", Bytes::from(format!("{i}"))).await }));
        }
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.unwrap().unwrap());
        }
        assert_eq!(winners, 1);
    }

    #[tokio::test]
    async fn a_local_io_error_names_the_file_and_keeps_its_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events"), b"a file where a folder should be").unwrap();
        let lake = LocalLake::new(dir.path());
        let error = lake.put("events/a.parquet", Bytes::from_static(b"x")).await.unwrap_err();
        assert!(matches!(error, LakeError::Io { operation: Operation::Put, .. }), "{error:?}");
        assert!(error.to_string().contains("events/a.parquet"), "{error}");
        assert!(std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>()));
        assert_eq!(error.kind(), ErrorKind::Permanent);
    }

    #[test]
    fn http_statuses_and_io_errors_have_the_kinds_callers_branch_on() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert_eq!(ErrorKind::of_http_status(status), ErrorKind::Transient, "{status}");
        }
        for status in [400, 401, 403, 409, 412] {
            assert_eq!(ErrorKind::of_http_status(status), ErrorKind::Permanent, "{status}");
        }
        assert_eq!(ErrorKind::of_http_status(404), ErrorKind::NotFound);
        assert_eq!(ErrorKind::of_io(std::io::ErrorKind::StorageFull), ErrorKind::Transient);
        assert_eq!(ErrorKind::of_io(std::io::ErrorKind::PermissionDenied), ErrorKind::Permanent);
        let internal = LakeError::internal(std::io::Error::other("task panicked"));
        assert_eq!(internal.kind(), ErrorKind::Permanent);
        assert!(std::error::Error::source(&internal).is_some());
    }

    #[test]
    fn a_json_error_answer_gives_its_reason_and_message() {
        let body = br#"{"error":{"code":403,"message":"Quota exceeded","errors":[{"reason":"rateLimitExceeded"}]}}"#;
        let answer = ServiceAnswer::parse(403, body);
        assert_eq!(answer.reason.as_deref(), Some("rateLimitExceeded"));
        assert_eq!(answer.to_string(), "HTTP 403 (rateLimitExceeded): Quota exceeded");
        assert_eq!(ServiceAnswer::parse(502, b"<html>bad gateway</html>").message, "<html>bad gateway</html>");
    }

    #[test]
    fn hour_folders_round_trip() {
        let hour: DateTime<Utc> = "2026-11-24T07:00:00Z".parse().unwrap();
        assert_eq!(hour_prefix(hour), "events/dt=2026-11-24/hour=07/");
        assert_eq!(hour_of_path("events/dt=2026-11-24/hour=07/x.parquet"), Some(hour));
        assert_eq!(hour_of_path("dead-letter/dt=2026-11-24/x.jsonl"), None);
    }
}
