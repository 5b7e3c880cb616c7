//! The lake in a GCS bucket (feature `gcp`): see the [parent module](super) for the retry
//! policy and why reads, listings and deletions use the JSON API directly.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;

use super::{BoxError, ErrorKind, Lake, LakeError, ObjectMeta, Operation, ServiceAnswer};

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
