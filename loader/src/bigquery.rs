//! BigQuery: the production warehouse, through `gcp-bigquery-client`.
//!
//! The raw table is partitioned by DAY on `event_time` and clustered (see [`crate::table`]).
//! `require_partition_filter` stays off: dbt's models always filter on `event_time`, and
//! analysts exploring the raw table should not be blocked; switch it on with Terraform if your
//! users query the raw table carelessly. An optional partition expiration
//! (`partition_expiration_days`) deletes old days; the lake keeps their Parquet either way.
//!
//! Each changed day is loaded with **one load job** into the partition decorator
//! `events$YYYYMMDD` with `WRITE_TRUNCATE`, reading the day's `gs://` objects, so re-running a
//! day replaces it and a run spends one of the table's daily modifications per changed day,
//! however many of its hours changed. Schema additions are allowed (`ALLOW_FIELD_ADDITION`); an
//! incompatible change fails the job with BigQuery's own message. Against an emulator (which
//! cannot read `gs://`) the same job configuration is sent with the files uploaded in the
//! request (`uploadType=multipart`), one job per file.
//!
//! **Errors and quotas.** A job id is chosen before the job is submitted and recorded in
//! `_load_jobs`, so a retried submission after a lost answer finds the job instead of starting
//! a second one (BigQuery answers 409 for a known id). Requests time out instead of hanging.
//! Errors are classified by BigQuery's `reason`: `rateLimitExceeded` and HTTP 429 are
//! [`WarehouseError::RateLimited`] (the caller backs off and retries, with a new job);
//! `quotaExceeded` is [`WarehouseError::QuotaExceeded`] (the run stops, naming the limit);
//! `backendError`, `internalError`, 5xx and transport errors are
//! [`WarehouseError::Unavailable`]; the rest is [`WarehouseError::Refused`]. Metadata calls and
//! queries retry transient errors with exponential backoff (`backon`). DML statements (the
//! loader's own bookkeeping tables) do not count against the table-modification quota.
//!
//! The `bqemulator` emulator rejects partition decorators, so against an emulator the loader
//! replaces a day with [`ReplaceStrategy::StagingTable`]: the same upload load job into a
//! staging table, then `DELETE` the day and `INSERT` the staging rows. Production uses the
//! decorator, whose request shape the unit tests pin.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use batcher::lake::{Lake, ObjectMeta};
use chrono::{DateTime, NaiveDate};
use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::table::Table;
use serde_json::{Value, json};

use crate::ledger::{JobRecord, Ledger, RunRecord};
use crate::table::{
    CLUSTERING, LOAD_JOBS_TABLE, LOAD_RUNS_TABLE, PARTITION_COLUMN, PARTITION_LOADS_TABLE, PARTITION_TYPE,
};
use crate::{LoadOutcome, LoadedPartition, PartitionLoad, Warehouse, WarehouseError, WarehouseState};

/// How a day's partition is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplaceStrategy {
    /// One load job into `table$YYYYMMDD` with WRITE_TRUNCATE: atomic, no query cost. The
    /// production default.
    PartitionDecorator,
    /// A load job into a staging table, then a statement that deletes the day from the table
    /// and one that inserts the staging rows. For endpoints without partition decorators (the
    /// bqemulator emulator rejects `table$…` ids).
    StagingTable,
}

/// Where the table lives and how to reach BigQuery.
#[derive(Clone, Debug)]
pub struct BigQueryConfig {
    /// Project of the dataset (and of the load jobs).
    pub project: String,
    /// Dataset of the raw table.
    pub dataset: String,
    /// The raw table.
    pub table: String,
    /// Dataset location (e.g. EU, US, europe-west1).
    pub location: Option<String>,
    /// Root URL of a BigQuery emulator (e.g. http://127.0.0.1:9050); `None` for Google's.
    pub endpoint: Option<String>,
    /// The lake's `gs://bucket/prefix/` when the jobs read the objects directly.
    pub gcs_lake: Option<String>,
    /// How each day is replaced.
    pub replace: ReplaceStrategy,
    /// Partition expiration of a table the loader creates (`None`: keep every day).
    pub partition_expiration_days: Option<u32>,
    /// How long one HTTP request may take before it is abandoned and retried.
    pub request_timeout: Duration,
}

#[derive(Clone)]
struct NoAuth;

#[async_trait]
impl Authenticator for NoAuth {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok("emulator".to_owned())
    }
}

/// The BigQuery warehouse.
pub struct BigQueryWarehouse {
    config: BigQueryConfig,
    client: Client,
    lake: Arc<dyn Lake>,
    http: reqwest::Client,
}

/// Classifies a job's or a response's error by BigQuery's `reason` (and HTTP status).
pub fn classify(context: &str, code: Option<u16>, reasons: &[&str], message: &str) -> WarehouseError {
    let text = format!("{context}: {message}");
    if reasons.contains(&"quotaExceeded") {
        WarehouseError::QuotaExceeded(text)
    } else if reasons.contains(&"rateLimitExceeded") || code == Some(429) {
        WarehouseError::RateLimited(text)
    } else if reasons
        .iter()
        .any(|r| matches!(*r, "backendError" | "internalError" | "jobBackendError" | "jobInternalError"))
        || code.is_some_and(|c| c >= 500)
    {
        WarehouseError::Unavailable(text)
    } else {
        WarehouseError::Refused(text)
    }
}

fn from_bq(context: &str, error: &BQError) -> WarehouseError {
    match error {
        BQError::ResponseError { error } => {
            let reasons: Vec<&str> =
                error.error.errors.iter().filter_map(|e| e.get("reason").map(String::as_str)).collect();
            let code = u16::try_from(error.error.code).ok();
            classify(context, code, &reasons, &error.error.message)
        }
        BQError::RequestError(e) => WarehouseError::Unavailable(format!("{context}: {e}")),
        other => WarehouseError::Refused(format!("{context}: {other}")),
    }
}

fn is_not_found(error: &BQError) -> bool {
    matches!(error, BQError::ResponseError { error } if error.error.code == 404)
}

fn is_conflict(error: &BQError) -> bool {
    matches!(error, BQError::ResponseError { error } if error.error.code == 409)
}

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_max_times(6)
        .with_jitter()
}

/// Calls `call` again after transient failures (5xx, resets, timeouts, rate limits), with
/// exponential backoff, until it succeeds or fails for good.
async fn retrying<T, F, Fut>(context: &str, call: F) -> Result<T, BQError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BQError>>,
{
    call.retry(backoff()).when(|e| from_bq(context, e).is_retryable()).await
}

/// A BigQuery string literal of `text`.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'").replace('\n', "\\n"))
}

/// The table definition: the contract's schema, DAY partitioning, clustering.
pub fn table_definition(config: &BigQueryConfig) -> Value {
    let mut partitioning = json!({"type": PARTITION_TYPE, "field": PARTITION_COLUMN});
    if let Some(days) = config.partition_expiration_days {
        partitioning["expirationMs"] = json!((u64::from(days) * 86_400_000).to_string());
    }
    json!({
        "tableReference": {"projectId": config.project, "datasetId": config.dataset, "tableId": config.table},
        "description": "clickstream raw events: one row per enriched event, partitioned by day of event_time, loaded a day partition at a time from the lake.",
        "schema": {"fields": event_model::schema::bigquery_schema_json()},
        "timePartitioning": partitioning,
        "clustering": {"fields": CLUSTERING},
        "requirePartitionFilter": false,
    })
}

/// The load job for one day: into the partition decorator (or the day's staging table),
/// WRITE_TRUNCATE, field additions allowed, under the id `job_id`.
pub fn load_job(config: &BigQueryConfig, day: NaiveDate, source_uris: Option<Vec<String>>, job_id: &str) -> Value {
    let destination = match config.replace {
        ReplaceStrategy::PartitionDecorator => format!("{}${}", config.table, day.format("%Y%m%d")),
        ReplaceStrategy::StagingTable => staging_table(config, day),
    };
    let mut load = json!({
        "destinationTable": {
            "projectId": config.project,
            "datasetId": config.dataset,
            "tableId": destination,
        },
        "sourceFormat": "PARQUET",
        "writeDisposition": "WRITE_TRUNCATE",
        "createDisposition": "CREATE_NEVER",
        "schemaUpdateOptions": ["ALLOW_FIELD_ADDITION"],
        "timePartitioning": {"type": PARTITION_TYPE, "field": PARTITION_COLUMN},
        "clustering": {"fields": CLUSTERING},
        "parquetOptions": {"enableListInference": true},
        "decimalTargetTypes": ["NUMERIC", "BIGNUMERIC"],
    });
    if let Some(uris) = source_uris {
        load["sourceUris"] = json!(uris);
    }
    if config.replace == ReplaceStrategy::StagingTable
        && let Some(fields) = load.as_object_mut()
    {
        fields.remove("schemaUpdateOptions");
        fields.remove("timePartitioning");
        fields.remove("clustering");
        fields.insert("createDisposition".into(), json!("CREATE_IF_NEEDED"));
    }
    let mut job = json!({
        "jobReference": {"projectId": config.project, "jobId": job_id},
        "configuration": {"load": load, "labels": {"component": "clickstream-loader"}},
    });
    if let Some(location) = &config.location {
        job["jobReference"]["location"] = json!(location);
    }
    job
}

/// The staging table of one day (StagingTable strategy).
pub fn staging_table(config: &BigQueryConfig, day: NaiveDate) -> String {
    format!("_staging_{}_{}", config.table, day.format("%Y%m%d"))
}

/// The SQL filter selecting one day of the partition column.
fn day_filter(day: NaiveDate) -> String {
    let start = day.format("%Y-%m-%d 00:00:00+00");
    format!(
        "{PARTITION_COLUMN} >= TIMESTAMP('{start}') AND {PARTITION_COLUMN} < TIMESTAMP_ADD(TIMESTAMP('{start}'), INTERVAL 1 DAY)"
    )
}

impl BigQueryWarehouse {
    /// Connects with Application Default Credentials, or to the emulator at `config.endpoint`.
    pub async fn connect(config: BigQueryConfig, lake: Arc<dyn Lake>) -> Result<Self, WarehouseError> {
        let unavailable = |e: BQError| WarehouseError::Unavailable(format!("BigQuery: {e}"));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| WarehouseError::Unavailable(format!("HTTP client: {e}")))?;
        let mut builder = gcp_bigquery_client::client_builder::ClientBuilder::new();
        builder.with_client(http.clone());
        let client = match &config.endpoint {
            Some(endpoint) => builder
                .with_v2_base_url(format!("{}/bigquery/v2", endpoint.trim_end_matches('/')))
                .build_from_authenticator(Arc::new(NoAuth))
                .await
                .map_err(unavailable)?,
            None => builder.build_from_application_default_credentials().await.map_err(unavailable)?,
        };
        Ok(Self { config, client, lake, http })
    }

    fn table_ref(&self, table: &str) -> String {
        format!("`{}.{}.{table}`", self.config.project, self.config.dataset)
    }

    /// Runs `sql`, waiting for it to finish, and returns its rows' cells.
    async fn query(&self, sql: &str) -> Result<Vec<Vec<Value>>, WarehouseError> {
        let mut request = QueryRequest::new(sql);
        request.location = self.config.location.clone();
        request.timeout_ms = Some(30_000);
        // One id for every attempt: BigQuery runs a retried request (its answer lost) once.
        request.request_id = Some(uuid::Uuid::new_v4().to_string());
        let response = (|| async { self.client.job().query(&self.config.project, request.clone()).await })
            .retry(backoff())
            .when(|e| from_bq("query", e).is_retryable())
            .await
            .map_err(|e| from_bq("query", &e))?;
        let mut value = serde_json::to_value(&response).map_err(|e| WarehouseError::Refused(format!("query: {e}")))?;
        // A query still running when jobs.query returns is waited for (bounded: ~30 minutes).
        for _ in 0..60 {
            if value["jobComplete"] != json!(false) {
                break;
            }
            let job_id = value["jobReference"]["jobId"].as_str().unwrap_or_default().to_owned();
            let parameters = GetQueryResultsParameters {
                location: self.config.location.clone(),
                timeout_ms: Some(30_000),
                ..Default::default()
            };
            let results = (|| async {
                self.client.job().get_query_results(&self.config.project, &job_id, parameters.clone()).await
            })
            .retry(backoff())
            .when(|e| from_bq("query results", e).is_retryable())
            .await
            .map_err(|e| from_bq("query results", &e))?;
            value = serde_json::to_value(&results).map_err(|e| WarehouseError::Refused(format!("query: {e}")))?;
        }
        if value["jobComplete"] == json!(false) {
            return Err(WarehouseError::Unavailable(format!("query did not finish: {sql}")));
        }
        if let Some(errors) = value["errors"].as_array().filter(|e| !e.is_empty()) {
            let reasons: Vec<&str> = errors.iter().filter_map(|e| e["reason"].as_str()).collect();
            let message: Vec<&str> = errors.iter().filter_map(|e| e["message"].as_str()).collect();
            return Err(classify("query", None, &reasons, &message.join("; ")));
        }
        Ok(value["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        row["f"]
                            .as_array()
                            .map(|cells| cells.iter().map(|c| c["v"].clone()).collect())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits for a job to finish; a failed job becomes the error its reason says.
    async fn wait_for(&self, job_id: &str) -> Result<Value, WarehouseError> {
        // Bounded: a load job that takes more than ~30 minutes is reported as failed.
        for attempt in 0..600u32 {
            let job = (|| async {
                self.client.job().get_job(&self.config.project, job_id, self.config.location.as_deref()).await
            })
            .retry(backoff())
            .when(|e| from_bq("job status", e).is_retryable())
            .await
            .map_err(|e| from_bq(&format!("status of job {job_id}"), &e))?;
            let job = serde_json::to_value(&job).map_err(|e| WarehouseError::Refused(format!("job status: {e}")))?;
            if job["status"]["state"] == "DONE" {
                if let Some(error) = job["status"].get("errorResult").filter(|e| !e.is_null()) {
                    let errors = job["status"]["errors"].as_array().cloned().unwrap_or_default();
                    let mut reasons: Vec<&str> = errors.iter().filter_map(|e| e["reason"].as_str()).collect();
                    reasons.extend(error["reason"].as_str());
                    let details: Vec<&str> = errors.iter().filter_map(|e| e["message"].as_str()).collect();
                    let message = format!(
                        "{}{}",
                        error["message"].as_str().unwrap_or("unknown error"),
                        if details.is_empty() { String::new() } else { format!(" ({})", details.join("; ")) }
                    );
                    return Err(classify(&format!("load job {job_id} failed"), None, &reasons, &message));
                }
                return Ok(job);
            }
            tokio::time::sleep(Duration::from_millis(if attempt < 10 { 300 } else { 3_000 })).await;
        }
        Err(WarehouseError::Unavailable(format!("load job {job_id} did not finish within 30 minutes")))
    }

    /// Submits a load job reading `gs://` objects. A submission whose answer was lost is
    /// retried under the same id; BigQuery's 409 then means it was created, and it is awaited.
    async fn insert_job(&self, job: &Value, job_id: &str) -> Result<Value, WarehouseError> {
        let typed: Job =
            serde_json::from_value(job.clone()).map_err(|e| WarehouseError::Refused(format!("load job: {e}")))?;
        let inserted = (|| async { self.client.job().insert(&self.config.project, typed.clone()).await })
            .retry(backoff())
            .when(|e| from_bq("load job", e).is_retryable())
            .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_conflict(&error) => tracing::info!(job_id, "the job exists already: waiting for it"),
            Err(error) => return Err(from_bq(&format!("submitting load job {job_id}"), &error)),
        }
        self.wait_for(job_id).await
    }

    /// Sends a load job whose data is uploaded in the request (multipart/related), one job per
    /// file, each taken from the ledger: the first replaces the destination, the others append.
    async fn upload_jobs(
        &mut self,
        day: NaiveDate,
        files: &[ObjectMeta],
        ledger: &mut Ledger,
    ) -> Result<Option<Value>, WarehouseError> {
        let endpoint = self.config.endpoint.clone().unwrap_or_else(|| "https://bigquery.googleapis.com".into());
        let url = format!(
            "{}/upload/bigquery/v2/projects/{}/jobs?uploadType=multipart",
            endpoint.trim_end_matches('/'),
            self.config.project
        );
        let mut last = None;
        for (index, file) in files.iter().enumerate() {
            let data = self.lake.get(&file.path).await.map_err(|e| {
                let message = format!("reading {}: {e:#}", file.path);
                if e.is_retryable() { WarehouseError::Unavailable(message) } else { WarehouseError::Refused(message) }
            })?;
            let record = ledger.take(day)?;
            self.record_job(&record).await?;
            let mut job = load_job(&self.config, day, None, &record.job_id);
            if index > 0 {
                job["configuration"]["load"]["writeDisposition"] = json!("WRITE_APPEND");
            }
            let boundary = format!("clickstream{}", uuid::Uuid::new_v4().simple());
            let mut body = Vec::with_capacity(data.len() + 4096);
            body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{job}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
            body.extend_from_slice(&data);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let body = bytes::Bytes::from(body);
            let send = || async {
                let mut request = self
                    .http
                    .post(&url)
                    .header("Content-Type", format!("multipart/related; boundary={boundary}"))
                    .body(body.clone());
                if self.config.endpoint.is_none() {
                    request = request.bearer_auth(adc_token().await?);
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| WarehouseError::Unavailable(format!("upload of {}: {e}", file.path)))?;
                let status = response.status();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                if status.is_success() {
                    // The id the service gave the job (an emulator may not keep the one sent).
                    return Ok(answer["jobReference"]["jobId"].as_str().unwrap_or(&record.job_id).to_owned());
                }
                if status.as_u16() == 409 {
                    return Ok(record.job_id.clone());
                }
                let reasons: Vec<&str> = answer["error"]["errors"]
                    .as_array()
                    .map(|e| e.iter().filter_map(|e| e["reason"].as_str()).collect())
                    .unwrap_or_default();
                Err(classify(&format!("upload of {}", file.path), Some(status.as_u16()), &reasons, &answer.to_string()))
            };
            let job_id = send.retry(backoff()).when(WarehouseError::is_retryable).await?;
            last = Some(self.wait_for(&job_id).await?);
        }
        Ok(last)
    }

    async fn create_table_if_missing(&self, table: Value) -> Result<bool, WarehouseError> {
        let c = &self.config;
        let id = table["tableReference"]["tableId"].as_str().unwrap_or_default().to_owned();
        match retrying("table", || self.client.table().get(&c.project, &c.dataset, &id, None)).await {
            Ok(_) => Ok(false),
            Err(error) if is_not_found(&error) => {
                let typed: Table =
                    serde_json::from_value(table).map_err(|e| WarehouseError::Refused(format!("table {id}: {e}")))?;
                match retrying("create table", || self.client.table().create(typed.clone())).await {
                    Ok(_) => Ok(true),
                    Err(error) if is_conflict(&error) => Ok(false),
                    Err(error) => Err(from_bq(&format!("create table {id}"), &error)),
                }
            }
            Err(error) => Err(from_bq(&format!("table {id}"), &error)),
        }
    }

    fn bookkeeping_table(&self, id: &str, description: &str, fields: Value) -> Value {
        let c = &self.config;
        json!({
            "tableReference": {"projectId": c.project, "datasetId": c.dataset, "tableId": id},
            "description": description,
            "schema": {"fields": fields},
        })
    }

    /// Checks the existing events table's layout: a table partitioned another way is refused
    /// before any job could fail on it.
    async fn check_layout(&self) -> Result<(), WarehouseError> {
        let c = &self.config;
        let table = retrying("events table", || self.client.table().get(&c.project, &c.dataset, &c.table, None))
            .await
            .map_err(|e| from_bq("events table", &e))?;
        let table = serde_json::to_value(&table).map_err(|e| WarehouseError::Refused(format!("events table: {e}")))?;
        let partitioning = &table["timePartitioning"];
        if partitioning.is_null() {
            tracing::warn!(table = %c.table, "the events table reports no time partitioning; loads may fail");
            return Ok(());
        }
        let kind = partitioning["type"].as_str().unwrap_or("DAY");
        let field = partitioning["field"].as_str().unwrap_or("_PARTITIONTIME");
        if kind != PARTITION_TYPE || field != PARTITION_COLUMN {
            return Err(WarehouseError::Refused(format!(
                "{}.{}.{} is partitioned by {kind} on {field}; this loader writes {PARTITION_TYPE} partitions on \
                 {PARTITION_COLUMN}. Migrate the table first (docs/deploy.md, \"Migrating the raw table from HOUR to DAY \
                 partitions\")",
                c.project, c.dataset, c.table
            )));
        }
        Ok(())
    }
}

async fn adc_token() -> Result<String, WarehouseError> {
    use google_cloud_auth::credentials::CacheableResource;
    let credentials = google_cloud_auth::credentials::Builder::default()
        .build()
        .map_err(|e| WarehouseError::Unavailable(format!("credentials: {e}")))?;
    match credentials.headers(Default::default()).await {
        Ok(CacheableResource::New { data, .. }) => data
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_start_matches("Bearer ").to_owned())
            .ok_or_else(|| WarehouseError::Unavailable("credentials gave no token".into())),
        Ok(CacheableResource::NotModified) => Err(WarehouseError::Unavailable("credentials gave no token".into())),
        Err(error) => Err(WarehouseError::Unavailable(format!("credentials: {error}"))),
    }
}

fn cell_str(row: &[Value], index: usize) -> Option<&str> {
    row.get(index).and_then(Value::as_str)
}

#[async_trait]
impl Warehouse for BigQueryWarehouse {
    async fn prepare(&mut self) -> Result<(), WarehouseError> {
        let c = self.config.clone();
        match retrying("dataset", || self.client.dataset().get(&c.project, &c.dataset)).await {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => {
                let mut dataset = json!({"datasetReference": {"projectId": c.project, "datasetId": c.dataset}});
                if let Some(location) = &c.location {
                    dataset["location"] = json!(location);
                }
                let dataset: Dataset =
                    serde_json::from_value(dataset).map_err(|e| WarehouseError::Refused(format!("dataset: {e}")))?;
                match retrying("create dataset", || self.client.dataset().create(dataset.clone())).await {
                    Ok(_) => {}
                    Err(error) if is_conflict(&error) => {}
                    Err(error) => return Err(from_bq("create dataset", &error)),
                }
            }
            Err(error) => return Err(from_bq("dataset", &error)),
        }
        if !self.create_table_if_missing(table_definition(&c)).await? {
            self.check_layout().await?;
        }
        let loads = self.bookkeeping_table(
            PARTITION_LOADS_TABLE,
            "Every completed load of a day partition of the raw events table, with the lake files it read (clickstream-loader). dbt reads it to find the days that changed.",
            json!([
                {"name": "partition_date", "type": "DATE", "mode": "REQUIRED"},
                {"name": "file_set", "type": "STRING", "mode": "REQUIRED"},
                {"name": "files", "type": "STRING", "mode": "REQUIRED"},
                {"name": "row_count", "type": "INTEGER", "mode": "REQUIRED"},
                {"name": "loaded_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
                {"name": "job_id", "type": "STRING", "mode": "REQUIRED"},
                {"name": "run_id", "type": "STRING", "mode": "REQUIRED"}
            ]),
        );
        let jobs = self.bookkeeping_table(
            LOAD_JOBS_TABLE,
            "Every load job clickstream-loader submitted on the raw events table, recorded before submission (failed ones included): its daily job budget counts them.",
            json!([
                {"name": "job_id", "type": "STRING", "mode": "REQUIRED"},
                {"name": "run_id", "type": "STRING", "mode": "REQUIRED"},
                {"name": "partition_date", "type": "DATE", "mode": "REQUIRED"},
                {"name": "submitted_at", "type": "TIMESTAMP", "mode": "REQUIRED"}
            ]),
        );
        let runs = self.bookkeeping_table(
            LOAD_RUNS_TABLE,
            "Every clickstream-loader run: partitions planned, loaded and left for a later run, and why it ended.",
            json!([
                {"name": "run_id", "type": "STRING", "mode": "REQUIRED"},
                {"name": "started_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
                {"name": "finished_at", "type": "TIMESTAMP", "mode": "REQUIRED"},
                {"name": "outcome", "type": "STRING", "mode": "REQUIRED"},
                {"name": "partitions_planned", "type": "INTEGER", "mode": "REQUIRED"},
                {"name": "partitions_loaded", "type": "INTEGER", "mode": "REQUIRED"},
                {"name": "partitions_deferred", "type": "INTEGER", "mode": "REQUIRED"},
                {"name": "jobs_submitted", "type": "INTEGER", "mode": "REQUIRED"},
                {"name": "message", "type": "STRING", "mode": "REQUIRED"}
            ]),
        );
        for table in [loads, jobs, runs] {
            self.create_table_if_missing(table).await?;
        }
        Ok(())
    }

    async fn state(&mut self) -> Result<WarehouseState, WarehouseError> {
        let c = self.config.clone();
        let mut state = WarehouseState::default();
        match retrying("events table", || self.client.table().get(&c.project, &c.dataset, &c.table, None)).await {
            Ok(table) => {
                let table = serde_json::to_value(&table).unwrap_or_default();
                state.partition_expiration_days = table["timePartitioning"]["expirationMs"]
                    .as_str()
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .and_then(|ms| u32::try_from(ms / 86_400_000).ok());
            }
            Err(error) if is_not_found(&error) => return Ok(state),
            Err(error) => return Err(from_bq("events table", &error)),
        }
        for table in [PARTITION_LOADS_TABLE, LOAD_JOBS_TABLE] {
            match retrying("table", || self.client.table().get(&c.project, &c.dataset, table, None)).await {
                Ok(_) => {}
                Err(error) if is_not_found(&error) => return Ok(state),
                Err(error) => return Err(from_bq(table, &error)),
            }
        }
        let rows = self
            .query(&format!(
                "SELECT FORMAT_DATE('%Y-%m-%d', partition_date), \
                 ARRAY_AGG(file_set ORDER BY loaded_at DESC LIMIT 1)[OFFSET(0)], \
                 UNIX_MICROS(MAX(loaded_at)) FROM {} GROUP BY 1",
                self.table_ref(PARTITION_LOADS_TABLE)
            ))
            .await?;
        for row in rows {
            let (Some(day), Some(file_set)) = (cell_str(&row, 0), cell_str(&row, 1)) else { continue };
            let Ok(day) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else { continue };
            let loaded_at = cell_str(&row, 2)
                .and_then(|m| m.parse::<i64>().ok())
                .and_then(DateTime::from_timestamp_micros)
                .unwrap_or_default();
            state.partitions.insert(day, LoadedPartition { file_set: file_set.to_owned(), loaded_at });
        }
        let jobs = self
            .query(&format!(
                "SELECT COUNT(*) FROM {} WHERE submitted_at > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 24 HOUR)",
                self.table_ref(LOAD_JOBS_TABLE)
            ))
            .await?;
        state.jobs_last_24h = jobs.first().and_then(|r| cell_str(r, 0)).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(state)
    }

    async fn loaded_files(&mut self, days: &[NaiveDate]) -> Result<HashMap<NaiveDate, Vec<String>>, WarehouseError> {
        if days.is_empty() {
            return Ok(HashMap::new());
        }
        let list: Vec<String> = days.iter().map(|d| format!("DATE '{}'", d.format("%Y-%m-%d"))).collect();
        let rows = self
            .query(&format!(
                "SELECT FORMAT_DATE('%Y-%m-%d', partition_date), ARRAY_AGG(files ORDER BY loaded_at DESC LIMIT 1)[OFFSET(0)] \
                 FROM {} WHERE partition_date IN ({}) GROUP BY 1",
                self.table_ref(PARTITION_LOADS_TABLE),
                list.join(", ")
            ))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let day = NaiveDate::parse_from_str(cell_str(&row, 0)?, "%Y-%m-%d").ok()?;
                let files: Vec<String> = serde_json::from_str(cell_str(&row, 1)?).ok()?;
                Some((day, files))
            })
            .collect())
    }

    async fn load_partition(
        &mut self,
        load: &PartitionLoad<'_>,
        ledger: &mut Ledger,
    ) -> Result<LoadOutcome, WarehouseError> {
        let c = self.config.clone();
        let day = load.day;
        let uris =
            c.gcs_lake.as_ref().map(|root| load.files.iter().map(|f| format!("{root}{}", f.path)).collect::<Vec<_>>());
        if c.replace == ReplaceStrategy::StagingTable {
            let staging = staging_table(&c, day);
            let _ =
                retrying("drop staging table", || self.client.table().delete(&c.project, &c.dataset, &staging)).await;
            let table: Table = serde_json::from_value(json!({
                "tableReference": {"projectId": c.project, "datasetId": c.dataset, "tableId": staging},
                "schema": {"fields": event_model::schema::bigquery_schema_json()},
            }))
            .map_err(|e| WarehouseError::Refused(format!("staging table: {e}")))?;
            retrying("create staging table", || self.client.table().create(table.clone()))
                .await
                .map_err(|e| from_bq("create staging table", &e))?;
        }
        let finished = match uris {
            Some(uris) => {
                let record = ledger.take(day)?;
                self.record_job(&record).await?;
                let job = load_job(&c, day, Some(uris), &record.job_id);
                Some(self.insert_job(&job, &record.job_id).await?)
            }
            None => self.upload_jobs(day, load.files, ledger).await?,
        };
        let rows = if c.replace == ReplaceStrategy::StagingTable {
            let staging = staging_table(&c, day);
            let columns: Vec<String> = event_model::schema::FIELDS.iter().map(|f| format!("`{}`", f.name)).collect();
            let columns = columns.join(", ");
            let (table, staging_ref) = (self.table_ref(&c.table), self.table_ref(&staging));
            let filter = day_filter(day);
            self.query(&format!("DELETE FROM {table} WHERE {filter}")).await?;
            self.query(&format!("INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging_ref} WHERE {filter}"))
                .await?;
            retrying("drop staging table", || self.client.table().delete(&c.project, &c.dataset, &staging))
                .await
                .map_err(|e| from_bq("drop staging table", &e))?;
            let rows = self.query(&format!("SELECT COUNT(*) FROM {table} WHERE {filter}")).await?;
            rows.first().and_then(|r| cell_str(r, 0)).and_then(|v| v.parse().ok()).unwrap_or(0)
        } else {
            // A WRITE_TRUNCATE load into one partition leaves exactly its output rows there.
            finished
                .as_ref()
                .and_then(|job| job["statistics"]["load"]["outputRows"].as_str())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let names: Vec<&str> = load.files.iter().map(|f| f.path.as_str()).collect();
        let job_id = ledger.issued().last().map(|j| j.job_id.clone()).unwrap_or_default();
        self.query(&format!(
            "INSERT INTO {} (partition_date, file_set, files, row_count, loaded_at, job_id, run_id) \
             VALUES (DATE '{}', {}, {}, {rows}, CURRENT_TIMESTAMP(), {}, {})",
            self.table_ref(PARTITION_LOADS_TABLE),
            day.format("%Y-%m-%d"),
            literal(load.file_set),
            literal(&serde_json::to_string(&names).unwrap_or_default()),
            literal(&job_id),
            literal(ledger.run_id()),
        ))
        .await?;
        Ok(LoadOutcome { rows, added_columns: Vec::new(), rows_outside: 0 })
    }

    async fn record_job(&mut self, job: &JobRecord) -> Result<(), WarehouseError> {
        self.query(&format!(
            "INSERT INTO {} (job_id, run_id, partition_date, submitted_at) VALUES ({}, {}, DATE '{}', TIMESTAMP_MICROS({}))",
            self.table_ref(LOAD_JOBS_TABLE),
            literal(&job.job_id),
            literal(&job.run_id),
            job.partition_date.format("%Y-%m-%d"),
            job.submitted_at.timestamp_micros()
        ))
        .await
        .map(|_| ())
    }

    async fn record_run(&mut self, run: &RunRecord) -> Result<(), WarehouseError> {
        self.query(&format!(
            "INSERT INTO {} (run_id, started_at, finished_at, outcome, partitions_planned, partitions_loaded, \
             partitions_deferred, jobs_submitted, message) VALUES ({}, TIMESTAMP_MICROS({}), TIMESTAMP_MICROS({}), {}, \
             {}, {}, {}, {}, {})",
            self.table_ref(LOAD_RUNS_TABLE),
            literal(&run.run_id),
            run.started_at.timestamp_micros(),
            run.finished_at.timestamp_micros(),
            literal(&run.outcome),
            run.partitions_planned,
            run.partitions_loaded,
            run.partitions_deferred,
            run.jobs_submitted,
            literal(&run.message),
        ))
        .await
        .map(|_| ())
    }

    fn jobs_per_partition(&self, files: usize) -> u64 {
        if self.config.gcs_lake.is_some() { 1 } else { files.max(1) as u64 }
    }

    fn describe(&self) -> String {
        format!("bigquery {}.{}.{}", self.config.project, self.config.dataset, self.config.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(gcs: Option<&str>) -> BigQueryConfig {
        BigQueryConfig {
            project: "shop-analytics".into(),
            dataset: "clickstream_raw".into(),
            table: "events".into(),
            location: Some("EU".into()),
            endpoint: None,
            gcs_lake: gcs.map(str::to_owned),
            replace: ReplaceStrategy::PartitionDecorator,
            partition_expiration_days: None,
            request_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_production_load_job_reads_gs_objects_into_the_day_partition_with_truncate() {
        let day: NaiveDate = "2026-11-24".parse().unwrap();
        let uris = vec![
            "gs://shop-lake/events/dt=2026-11-24/hour=10/spool-1.parquet".to_owned(),
            "gs://shop-lake/events/dt=2026-11-24/hour=11/spool-2.parquet".to_owned(),
        ];
        let job = load_job(&config(Some("gs://shop-lake/")), day, Some(uris.clone()), "clickstream_load_x_1");
        let load = &job["configuration"]["load"];
        assert_eq!(load["destinationTable"]["tableId"], "events$20261124");
        assert_eq!(load["sourceUris"], json!(uris));
        assert_eq!(load["writeDisposition"], "WRITE_TRUNCATE");
        assert_eq!(load["sourceFormat"], "PARQUET");
        assert_eq!(load["schemaUpdateOptions"], json!(["ALLOW_FIELD_ADDITION"]));
        assert_eq!(load["timePartitioning"], json!({"type": "DAY", "field": "event_time"}));
        assert_eq!(
            job["jobReference"],
            json!({"projectId": "shop-analytics", "jobId": "clickstream_load_x_1", "location": "EU"})
        );
        // The typed client accepts exactly this request.
        let typed: Job = serde_json::from_value(job.clone()).unwrap();
        let round_trip = serde_json::to_value(&typed).unwrap();
        assert_eq!(round_trip["configuration"]["load"]["sourceUris"], json!(uris));
        assert_eq!(round_trip["configuration"]["load"]["destinationTable"]["tableId"], "events$20261124");
        assert_eq!(round_trip["jobReference"]["jobId"], "clickstream_load_x_1");
    }

    #[test]
    fn the_table_is_day_partitioned_and_clustered_with_the_contract_schema_and_optional_expiration() {
        let table = table_definition(&config(None));
        assert_eq!(table["timePartitioning"], json!({"type": "DAY", "field": "event_time"}));
        assert_eq!(table["clustering"]["fields"], json!(CLUSTERING));
        assert_eq!(table["schema"]["fields"].as_array().unwrap().len(), event_model::schema::FIELDS.len());
        let _: Table = serde_json::from_value(table).unwrap();
        let expiring = table_definition(&BigQueryConfig { partition_expiration_days: Some(400), ..config(None) });
        assert_eq!(expiring["timePartitioning"]["expirationMs"], "34560000000");
        let _: Table = serde_json::from_value(expiring).unwrap();
    }

    #[test]
    fn errors_are_classified_by_bigquerys_reason() {
        let quota = classify(
            "load job x failed",
            None,
            &["quotaExceeded"],
            "Quota exceeded: Your table exceeded quota for imports or query appends per table",
        );
        assert!(matches!(&quota, WarehouseError::QuotaExceeded(m) if m.contains("imports or query appends per table")));
        assert!(!quota.is_retryable());
        assert!(matches!(
            classify("x", Some(403), &["rateLimitExceeded"], "slow down"),
            WarehouseError::RateLimited(_)
        ));
        assert!(matches!(classify("x", Some(429), &[], "too many"), WarehouseError::RateLimited(_)));
        assert!(classify("x", Some(503), &["backendError"], "try later").is_retryable());
        assert!(matches!(classify("x", Some(400), &["invalid"], "bad schema"), WarehouseError::Refused(_)));
        assert!(matches!(classify("x", Some(403), &["accessDenied"], "no"), WarehouseError::Refused(_)));
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal(r#"it's a \ path"#), r"'it\'s a \\ path'");
    }
}
