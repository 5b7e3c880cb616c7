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
//! of hanging: see [`GcsSettings`]. Writes go through Google's official `google-cloud-storage`
//! crate (multipart and resumable uploads, CRC32C checksums, `ifGenerationMatch` preconditions),
//! with the crate's own retry loop turned off so that one policy, with attempt deadlines the
//! crate does not have, governs every call. Reads, listings and deletions use three documented
//! JSON-API calls of the same service instead (authenticated with the same credentials), because
//! the crate (v1.21) lists and deletes only over the gRPC `google.storage.v2` service, which
//! neither GCS emulator serves, and its reader rejects answers without an `x-goog-generation`
//! header, which `gcp-storage-emulator` omits.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
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
    /// An attempt went past its deadline ([`GcsSettings`]). Always transient.
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
            LakeError::Internal { .. } => ErrorKind::Permanent,
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
            LakeError::Internal { .. } => None,
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

/// Opens the lake at `url`: `gs://bucket[/prefix]` or a local directory path.
pub async fn open(url: &str) -> Result<Box<dyn Lake>, LakeError> {
    match url.strip_prefix("gs://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let emulator = std::env::var("STORAGE_EMULATOR_HOST").ok().filter(|h| !h.is_empty());
            Ok(Box::new(GcsLake::connect(bucket, prefix, emulator).await?))
        }
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

/// How a [`GcsLake`] retries and times out its calls.
///
/// Every call is retried on [`ErrorKind::Transient`] errors only, up to `max_attempts` attempts,
/// waiting `min_backoff`, then twice as long each time (with jitter), at most `max_backoff`.
/// Each attempt has a deadline, so a stalled request fails as [`LakeError::TimedOut`] (or a
/// transport timeout) and is retried instead of hanging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcsSettings {
    /// Attempts per call, the first included.
    pub max_attempts: usize,
    /// Wait before the first retry.
    pub min_backoff: Duration,
    /// Longest wait between two attempts.
    pub max_backoff: Duration,
    /// Longest wait for a connection to be established.
    pub connect_timeout: Duration,
    /// Longest a read, listing or deletion may go without receiving a byte.
    pub read_timeout: Duration,
    /// Deadline of an attempt that moves little data (a listing page, a deletion, the answer
    /// headers of a read); uploads get this plus their size at `min_throughput`.
    pub attempt_timeout: Duration,
    /// The slowest upload rate, in bytes per second, still taken for progress: a 64 MiB upload
    /// at 1 MiB/s gets `attempt_timeout` + 64 s.
    pub min_throughput: u64,
}

impl Default for GcsSettings {
    /// 6 attempts over about 6 s of backoff (0.2, 0.4, 0.8, 1.6, 3.2 s); 10 s to connect; 30 s
    /// without a byte; 60 s per small attempt; uploads at no less than 1 MiB/s.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(60),
            min_throughput: 1024 * 1024,
        }
    }
}

impl GcsSettings {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff)
            .with_max_times(self.max_attempts.saturating_sub(1))
            .with_jitter()
    }

    fn upload_deadline(&self, bytes: usize) -> Duration {
        let transfer = Duration::from_secs_f64(bytes as f64 / self.min_throughput.max(1) as f64);
        self.attempt_timeout + transfer
    }
}

/// A lake in a GCS bucket, optionally under a prefix. Honours `STORAGE_EMULATOR_HOST`; uses
/// Application Default Credentials otherwise.
pub struct GcsLake {
    bucket: String,
    prefix: String,
    client: google_cloud_storage::client::Storage,
    http: reqwest::Client,
    json_endpoint: String,
    credentials: google_cloud_auth::credentials::Credentials,
    settings: GcsSettings,
}

impl GcsLake {
    /// Connects to `bucket`, storing objects under `prefix`; `emulator` is the address of a GCS
    /// emulator (as in `STORAGE_EMULATOR_HOST`) or `None` for Google Cloud Storage.
    pub async fn connect(bucket: &str, prefix: &str, emulator: Option<String>) -> Result<Self, LakeError> {
        Self::connect_with(bucket, prefix, emulator, GcsSettings::default()).await
    }

    /// [`connect`](Self::connect) with retry and timeout settings.
    pub async fn connect_with(
        bucket: &str,
        prefix: &str,
        emulator: Option<String>,
        settings: GcsSettings,
    ) -> Result<Self, LakeError> {
        let location = format!("gs://{bucket}");
        let failed = |what: &'static str| {
            let location = location.clone();
            move |source: BoxError| LakeError::Remote {
                operation: Operation::Connect,
                location,
                what,
                kind: ErrorKind::Permanent,
                source,
            }
        };
        let (credentials, json_endpoint) = match &emulator {
            Some(host) => {
                let host = if host.starts_with("http") { host.clone() } else { format!("http://{host}") };
                (
                    google_cloud_auth::credentials::anonymous::Builder::new().build(),
                    host.trim_end_matches('/').to_owned(),
                )
            }
            None => {
                let credentials = google_cloud_auth::credentials::Builder::default()
                    .build()
                    .map_err(|e| failed("no Application Default Credentials")(e.into()))?;
                (credentials, "https://storage.googleapis.com".to_owned())
            }
        };
        // The crate's own retry loop is off: `retrying` below retries every call, with attempt
        // deadlines the crate does not set.
        let mut builder = google_cloud_storage::client::Storage::builder()
            .with_credentials(credentials.clone())
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry);
        if emulator.is_some() {
            builder = builder.with_endpoint(json_endpoint.clone());
        }
        let client = builder.build().await.map_err(|e| failed("cannot build the storage client")(e.into()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .build()
            .map_err(|e| failed("cannot build the HTTP client")(e.into()))?;
        let prefix = prefix.trim_matches('/');
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() { String::new() } else { format!("{prefix}/") },
            client,
            http,
            json_endpoint,
            credentials,
            settings,
        })
    }

    fn object(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    fn location(&self, object: &str) -> String {
        format!("gs://{}/{object}", self.bucket)
    }

    fn bucket_path(&self) -> String {
        format!("projects/_/buckets/{}", self.bucket)
    }

    fn object_url(&self, object: &str) -> String {
        format!("{}/storage/v1/b/{}/o/{}", self.json_endpoint, encode(&self.bucket), encode(object))
    }

    /// Runs `attempt` until it succeeds, fails permanently or runs out of attempts.
    async fn retrying<T, F, Fut>(&self, operation: Operation, location: &str, attempt: F) -> Result<T, LakeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LakeError>>,
    {
        attempt
            .retry(self.settings.backoff())
            .when(LakeError::is_retryable)
            .notify(|error: &LakeError, delay: Duration| {
                metrics::counter!("clickstream_batcher_lake_retries_total", "operation" => operation.name())
                    .increment(1);
                tracing::warn!(error = %chain(error), ?delay, location, "retrying a lake call");
            })
            .await
    }

    async fn auth_headers(
        &self,
        operation: Operation,
        location: &str,
    ) -> Result<reqwest::header::HeaderMap, LakeError> {
        use google_cloud_auth::credentials::CacheableResource;
        match self.credentials.headers(Default::default()).await {
            Ok(CacheableResource::New { data, .. }) => {
                let mut headers = reqwest::header::HeaderMap::new();
                for (name, value) in &data {
                    if let (Ok(name), Ok(value)) = (
                        reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
                        reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
                    ) {
                        headers.insert(name, value);
                    }
                }
                Ok(headers)
            }
            Ok(CacheableResource::NotModified) => Ok(reqwest::header::HeaderMap::new()),
            Err(error) => Err(LakeError::Remote {
                operation,
                location: location.to_owned(),
                what: "credentials unavailable",
                kind: if error.is_transient() { ErrorKind::Transient } else { ErrorKind::Permanent },
                source: error.into(),
            }),
        }
    }

    /// Sends one JSON-API request and checks its status: on a get or delete, 404 becomes
    /// [`LakeError::NotFound`]; other error statuses (a listing's 404 too: the bucket is
    /// missing) [`LakeError::Status`] with the store's answer as the source.
    async fn send(
        &self,
        operation: Operation,
        location: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, LakeError> {
        let request = request.headers(self.auth_headers(operation, location).await?);
        let response = within(operation, location, self.settings.attempt_timeout, async {
            request.send().await.map_err(|e| from_reqwest(operation, location, e))
        })
        .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let object_call = matches!(operation, Operation::Get | Operation::Delete);
        if status == reqwest::StatusCode::NOT_FOUND && object_call {
            return Err(LakeError::NotFound { operation, location: location.to_owned() });
        }
        let body = response.bytes().await.unwrap_or_default();
        let answer = ServiceAnswer::parse(status.as_u16(), &body);
        let kind = match ErrorKind::of_http_status(status.as_u16()) {
            ErrorKind::NotFound => ErrorKind::Permanent,
            kind => kind,
        };
        Err(LakeError::Status {
            operation,
            location: location.to_owned(),
            status: status.as_u16(),
            kind,
            source: answer.into(),
        })
    }

    async fn get_once(&self, location: &str, url: &str) -> Result<Bytes, LakeError> {
        let response = self.send(Operation::Get, location, self.http.get(url).query(&[("alt", "media")])).await?;
        // The body is bounded by the client's read timeout: a stall mid-body fails the attempt.
        response.bytes().await.map_err(|e| from_reqwest(Operation::Get, location, e))
    }

    async fn list_page(&self, location: &str, prefix: &str, token: Option<&str>) -> Result<ListPage, LakeError> {
        let mut request = self
            .http
            .get(format!("{}/storage/v1/b/{}/o", self.json_endpoint, encode(&self.bucket)))
            .query(&[("prefix", prefix), ("fields", "items(name,size,generation),nextPageToken")]);
        if let Some(token) = token {
            request = request.query(&[("pageToken", token)]);
        }
        let response = self.send(Operation::List, location, request).await?;
        let body = within(Operation::List, location, self.settings.attempt_timeout, async {
            response.bytes().await.map_err(|e| from_reqwest(Operation::List, location, e))
        })
        .await?;
        serde_json::from_slice(&body).map_err(|e| LakeError::Remote {
            operation: Operation::List,
            location: location.to_owned(),
            what: "the listing could not be decoded",
            kind: ErrorKind::Permanent,
            source: e.into(),
        })
    }

    /// Uploads `data` through the official client; `attempts` counts the attempts made.
    async fn upload(
        &self,
        operation: Operation,
        path: &str,
        data: Bytes,
        attempts: &std::sync::atomic::AtomicUsize,
    ) -> Result<(), LakeError> {
        let object = self.object(path);
        let location = self.location(&object);
        let deadline = self.settings.upload_deadline(data.len());
        self.retrying(operation, &location, || {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut request = self.client.write_object(self.bucket_path(), object.clone(), data.clone());
            if operation == Operation::PutIfAbsent {
                request = request.set_if_generation_match(0);
            }
            let location = location.as_str();
            within(operation, location, deadline, async move {
                request.send_buffered().await.map(|_| ()).map_err(|e| from_gcs(operation, location, e))
            })
        })
        .await
    }
}

#[derive(serde::Deserialize)]
struct ListPage {
    #[serde(default)]
    items: Vec<ListItem>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct ListItem {
    name: String,
    size: Option<String>,
    generation: Option<String>,
}

/// Runs one attempt with a deadline.
async fn within<T>(
    operation: Operation,
    location: &str,
    deadline: Duration,
    attempt: impl Future<Output = Result<T, LakeError>>,
) -> Result<T, LakeError> {
    match tokio::time::timeout(deadline, attempt).await {
        Ok(result) => result,
        Err(_) => Err(LakeError::TimedOut { operation, location: location.to_owned(), after: deadline }),
    }
}

fn from_reqwest(operation: Operation, location: &str, error: reqwest::Error) -> LakeError {
    let location = location.to_owned();
    if error.is_builder() {
        return LakeError::Remote {
            operation,
            location,
            what: "the request could not be built",
            kind: ErrorKind::Permanent,
            source: error.into(),
        };
    }
    // Connect (refused, unreachable), timeouts, resets, bodies cut short: all transient.
    LakeError::Transport { operation, location, source: error.into() }
}

/// Classifies an error of the official client as the crate's own retry policy would for an
/// idempotent call (`google_cloud_storage::retry_policy::RetryableErrors`).
fn from_gcs(operation: Operation, location: &str, error: google_cloud_storage::Error) -> LakeError {
    let location = location.to_owned();
    if let Some(status) = error.http_status_code() {
        // On a write, 404 means the bucket is missing: a configuration error, not a missing
        // object.
        let kind = match ErrorKind::of_http_status(status) {
            ErrorKind::NotFound => ErrorKind::Permanent,
            kind => kind,
        };
        return LakeError::Status { operation, location, status, kind, source: error.into() };
    }
    if error.is_timeout() || error.is_io() || error.is_connect() || error.is_transport() {
        return LakeError::Transport { operation, location, source: error.into() };
    }
    let (what, kind) = if error.is_authentication() {
        let kind = if error.is_transient_and_before_rpc() { ErrorKind::Transient } else { ErrorKind::Permanent };
        ("credentials unavailable", kind)
    } else if let Some(code) = error.status().map(|s| s.code) {
        use google_cloud_gax::error::rpc::Code;
        let kind = match code {
            Code::Unavailable | Code::Internal | Code::ResourceExhausted | Code::DeadlineExceeded => {
                ErrorKind::Transient
            }
            _ => ErrorKind::Permanent,
        };
        ("the object store refused the call", kind)
    } else {
        ("the client library failed", ErrorKind::Permanent)
    };
    LakeError::Remote { operation, location, what, kind, source: error.into() }
}

/// An error and its sources, `: `-separated, for logs.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    // Bounded: error chains are short; 16 links is far beyond any real one.
    for _ in 0..16 {
        let Some(next) = source else { break };
        text.push_str(": ");
        text.push_str(&next.to_string());
        source = next.source();
    }
    text
}

fn encode(component: &str) -> String {
    component
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Most pages a listing may take (1,000 objects a page): more is a configuration error.
const MAX_LIST_PAGES: usize = 10_000;

#[async_trait]
impl Lake for GcsLake {
    async fn put(&self, path: &str, data: Bytes) -> Result<(), LakeError> {
        self.upload(Operation::Put, path, data, &std::sync::atomic::AtomicUsize::new(0)).await
    }

    async fn put_if_absent(&self, path: &str, data: Bytes) -> Result<bool, LakeError> {
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        match self.upload(Operation::PutIfAbsent, path, data.clone(), &attempts).await {
            Ok(()) => Ok(true),
            // `ifGenerationMatch=0` failed: an object is there. After a failed attempt, it may be
            // that attempt's own object, whose answer was lost: identical bytes say so.
            Err(error) if error.http_status() == Some(412) => {
                if attempts.load(std::sync::atomic::Ordering::Relaxed) <= 1 {
                    return Ok(false);
                }
                match self.get(path).await {
                    Ok(existing) => Ok(existing == data),
                    Err(error) if error.is_not_found() => Ok(false),
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    async fn get(&self, path: &str) -> Result<Bytes, LakeError> {
        let object = self.object(path);
        let location = self.location(&object);
        let url = self.object_url(&object);
        self.retrying(Operation::Get, &location, || self.get_once(&location, &url)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, LakeError> {
        let full_prefix = self.object(prefix);
        let location = self.location(&full_prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            // Each page is retried on its own, resuming from its page token.
            let page = self
                .retrying(Operation::List, &location, || self.list_page(&location, &full_prefix, token.as_deref()))
                .await?;
            for item in page.items {
                let path = item.name.strip_prefix(&self.prefix).unwrap_or(&item.name).to_owned();
                let size = item.size.and_then(|s| s.parse().ok()).unwrap_or(0);
                out.push(ObjectMeta { path, size, version: item.generation });
            }
            match page.next_page_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => {
                    out.sort();
                    return Ok(out);
                }
            }
        }
        Err(LakeError::Remote {
            operation: Operation::List,
            location,
            what: "the listing has more pages than a lake may have",
            kind: ErrorKind::Permanent,
            source: format!("more than {MAX_LIST_PAGES} pages").into(),
        })
    }

    async fn delete(&self, path: &str) -> Result<(), LakeError> {
        let object = self.object(path);
        let location = self.location(&object);
        let url = self.object_url(&object);
        let result = self
            .retrying(Operation::Delete, &location, || self.send(Operation::Delete, &location, self.http.delete(&url)))
            .await;
        match result {
            Ok(_) => Ok(()),
            // Missing already, or deleted by an attempt whose answer was lost.
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn describe(&self) -> String {
        format!("gs://{}/{}", self.bucket, self.prefix)
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
