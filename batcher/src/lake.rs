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
//! hidden temporary file in the same directory, fsync'd, renamed into place and the directory
//! fsync'd; on GCS an object becomes visible only when its upload completes.
//!
//! GCS writes use Google's official `google-cloud-storage` crate (resumable/multipart uploads,
//! retries, checksums). That crate sends listing and deletion through the gRPC `StorageControl`
//! service, which GCS emulators do not serve, and its reader requires response headers
//! (`x-goog-generation`) the emulators omit; so `get`, `list` and `delete` use the JSON API of the
//! same service directly — three documented REST calls, authenticated with the same credentials.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// An object's name and size.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectMeta {
    /// Path relative to the lake root, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
}

/// Why an object-store call failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The object does not exist.
    #[error("no object at {0}")]
    NotFound(String),
    /// Local I/O failed.
    #[error("lake I/O at {path}: {source}")]
    Io {
        /// What was being accessed.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The remote store failed.
    #[error("object store: {0}")]
    Remote(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LakeError + '_ {
    move |source| LakeError::Io { path: path.display().to_string(), source }
}

/// Where Parquet files and dead letters are stored.
#[async_trait]
pub trait Lake: Send + Sync {
    /// Stores `data` at `path` atomically and durably, replacing any object there.
    async fn put(&self, path: &str, data: Bytes) -> Result<(), LakeError>;
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

fn put_local(full: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = full.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = full.file_name().and_then(|n| n.to_str()).unwrap_or("object");
    let temporary = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&temporary, full)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
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
            out.push(ObjectMeta { path: relative, size: entry.metadata()?.len() });
        }
    }
    Ok(())
}

#[async_trait]
impl Lake for LocalLake {
    async fn put(&self, path: &str, data: Bytes) -> Result<(), LakeError> {
        let full = self.full(path);
        tokio::task::spawn_blocking(move || put_local(&full, &data).map_err(|e| (full, e)))
            .await
            .map_err(|e| LakeError::Remote(e.to_string()))?
            .map_err(|(full, e)| io(&full)(e))
    }

    async fn get(&self, path: &str) -> Result<Bytes, LakeError> {
        let full = self.full(path);
        match tokio::fs::read(&full).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(LakeError::NotFound(path.to_owned())),
            Err(error) => Err(io(&full)(error)),
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
            list_local(&root, &start, &mut out).map_err(io(&start))?;
            out.retain(|o| o.path.starts_with(&prefix));
            out.sort();
            Ok(out)
        })
        .await
        .map_err(|e| LakeError::Remote(e.to_string()))?
    }

    async fn delete(&self, path: &str) -> Result<(), LakeError> {
        let full = self.full(path);
        match tokio::fs::remove_file(&full).await {
            Ok(()) => {
                if let Some(dir) = full.parent() {
                    sync_dir(dir).map_err(io(dir))?;
                }
                Ok(())
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io(&full)(error)),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// A lake in a GCS bucket, optionally under a prefix. Honours `STORAGE_EMULATOR_HOST`.
pub struct GcsLake {
    bucket: String,
    prefix: String,
    client: google_cloud_storage::client::Storage,
    http: reqwest::Client,
    json_endpoint: String,
    credentials: google_cloud_auth::credentials::Credentials,
}

impl GcsLake {
    /// Connects to `bucket`, storing objects under `prefix`; `emulator` is the address of a GCS
    /// emulator (as in `STORAGE_EMULATOR_HOST`) or `None` for Google Cloud Storage.
    pub async fn connect(bucket: &str, prefix: &str, emulator: Option<String>) -> Result<Self, LakeError> {
        let remote = |e: &dyn std::fmt::Display| LakeError::Remote(e.to_string());
        let (client, credentials, json_endpoint) = match &emulator {
            Some(host) => {
                let host = if host.starts_with("http") { host.clone() } else { format!("http://{host}") };
                let credentials = google_cloud_auth::credentials::anonymous::Builder::new().build();
                let client = google_cloud_storage::client::Storage::builder()
                    .with_endpoint(host.clone())
                    .with_credentials(credentials.clone())
                    .build()
                    .await
                    .map_err(|e| remote(&e))?;
                (client, credentials, host)
            }
            None => {
                let credentials = google_cloud_auth::credentials::Builder::default().build().map_err(|e| remote(&e))?;
                let client = google_cloud_storage::client::Storage::builder()
                    .with_credentials(credentials.clone())
                    .build()
                    .await
                    .map_err(|e| remote(&e))?;
                (client, credentials, "https://storage.googleapis.com".to_owned())
            }
        };
        let prefix = prefix.trim_matches('/');
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() { String::new() } else { format!("{prefix}/") },
            client,
            http: reqwest::Client::new(),
            json_endpoint,
            credentials,
        })
    }

    fn object(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    fn bucket_path(&self) -> String {
        format!("projects/_/buckets/{}", self.bucket)
    }

    async fn auth_headers(&self) -> Result<reqwest::header::HeaderMap, LakeError> {
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
            Err(error) => Err(LakeError::Remote(format!("credentials: {error}"))),
        }
    }
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

#[async_trait]
impl Lake for GcsLake {
    async fn put(&self, path: &str, data: Bytes) -> Result<(), LakeError> {
        self.client
            .write_object(self.bucket_path(), self.object(path), data)
            .send_buffered()
            .await
            .map(|_| ())
            .map_err(|e| LakeError::Remote(format!("write gs://{}/{}: {e}", self.bucket, self.object(path))))
    }

    async fn get(&self, path: &str) -> Result<Bytes, LakeError> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}?alt=media",
            self.json_endpoint,
            encode(&self.bucket),
            encode(&self.object(path))
        );
        let response = self
            .http
            .get(url)
            .headers(self.auth_headers().await?)
            .send()
            .await
            .map_err(|e| LakeError::Remote(e.to_string()))?;
        match response.status() {
            status if status.is_success() => response.bytes().await.map_err(|e| LakeError::Remote(e.to_string())),
            reqwest::StatusCode::NOT_FOUND => Err(LakeError::NotFound(path.to_owned())),
            status => Err(LakeError::Remote(format!("read gs://{}/{}: HTTP {status}", self.bucket, self.object(path)))),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, LakeError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            items: Vec<Item>,
            #[serde(rename = "nextPageToken")]
            next_page_token: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Item {
            name: String,
            size: Option<String>,
        }
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let full_prefix = self.object(prefix);
        // Bounded: a lake listing of more than 10,000 pages (10M objects) is a configuration error.
        for _ in 0..10_000 {
            let mut request = self
                .http
                .get(format!("{}/storage/v1/b/{}/o", self.json_endpoint, encode(&self.bucket)))
                .headers(self.auth_headers().await?)
                .query(&[("prefix", full_prefix.as_str()), ("fields", "items(name,size),nextPageToken")]);
            if let Some(token) = &token {
                request = request.query(&[("pageToken", token.as_str())]);
            }
            let response = request.send().await.map_err(|e| LakeError::Remote(e.to_string()))?;
            if !response.status().is_success() {
                return Err(LakeError::Remote(format!(
                    "list gs://{}/{full_prefix}: HTTP {}",
                    self.bucket,
                    response.status()
                )));
            }
            let page: Page = response.json().await.map_err(|e| LakeError::Remote(e.to_string()))?;
            for item in page.items {
                let path = item.name.strip_prefix(&self.prefix).unwrap_or(&item.name).to_owned();
                let size = item.size.and_then(|s| s.parse().ok()).unwrap_or(0);
                out.push(ObjectMeta { path, size });
            }
            match page.next_page_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete(&self, path: &str) -> Result<(), LakeError> {
        let url =
            format!("{}/storage/v1/b/{}/o/{}", self.json_endpoint, encode(&self.bucket), encode(&self.object(path)));
        let response = self
            .http
            .delete(url)
            .headers(self.auth_headers().await?)
            .send()
            .await
            .map_err(|e| LakeError::Remote(e.to_string()))?;
        if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(LakeError::Remote(format!(
                "delete gs://{}/{}: HTTP {}",
                self.bucket,
                self.object(path),
                response.status()
            )))
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
        assert_eq!(listed, vec![ObjectMeta { path: "events/dt=2026-11-24/hour=10/a.parquet".into(), size: 5 }]);
        assert_eq!(lake.list("events/").await.unwrap().len(), 2);
        assert_eq!(lake.get("events/dt=2026-11-24/hour=10/a.parquet").await.unwrap(), "three");
        lake.delete("events/dt=2026-11-24/hour=10/a.parquet").await.unwrap();
        lake.delete("events/dt=2026-11-24/hour=10/a.parquet").await.unwrap();
        assert!(matches!(lake.get("events/dt=2026-11-24/hour=10/a.parquet").await, Err(LakeError::NotFound(_))));
        assert!(lake.list("nothing/here/").await.unwrap().is_empty());
    }

    #[test]
    fn hour_folders_round_trip() {
        let hour: DateTime<Utc> = "2026-11-24T07:00:00Z".parse().unwrap();
        assert_eq!(hour_prefix(hour), "events/dt=2026-11-24/hour=07/");
        assert_eq!(hour_of_path("events/dt=2026-11-24/hour=07/x.parquet"), Some(hour));
        assert_eq!(hour_of_path("dead-letter/dt=2026-11-24/x.jsonl"), None);
    }
}
