//! BigQuery: the production warehouse, through `gcp-bigquery-client`.
//!
//! The raw table is partitioned by HOUR on `event_time` — the column the lake's folders use, so
//! one lake hour is one partition — and clustered by `event_type, category_code, product_id`:
//! the marts filter on the funnel step first and group by category and product, so those three
//! prune the most blocks. `require_partition_filter` stays off: dbt's incremental models always
//! filter on `event_time`, and analysts exploring the raw table should not be blocked; switch it
//! on with Terraform if your users query the raw table carelessly.
//!
//! Each hour is loaded with one load job into the partition decorator `events$YYYYMMDDHH` with
//! `WRITE_TRUNCATE`, so re-running an hour replaces it. Schema additions are allowed
//! (`ALLOW_FIELD_ADDITION`); an incompatible change fails the job, and BigQuery's own messages
//! are reported. In production the job reads the hour's `gs://` objects; against an emulator
//! (which cannot read `gs://`) the same job configuration is sent with the files uploaded in the
//! request (`uploadType=multipart`). Transient errors are retried with exponential backoff
//! (`backon`). The file set of each loaded hour is recorded in `_load_state`.
//!
//! The `bqemulator` emulator rejects partition decorators, so against an emulator the loader
//! replaces an hour with [`ReplaceStrategy::StagingTable`]: the same upload load job into a
//! staging table, then `DELETE` the hour and `INSERT` the staging rows. Production uses the
//! decorator, whose request shape the unit tests pin.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use batcher::lake::{Lake, ObjectMeta};
use chrono::{DateTime, Utc};
use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::table::Table;
use serde_json::{Value, json};

use crate::{LoadOutcome, Warehouse, WarehouseError};

/// Columns the raw table is clustered by (also Terraform's; a deploy test compares them).
pub const CLUSTERING: [&str; 3] = ["event_type", "category_code", "product_id"];
/// The column the raw table is partitioned on, by HOUR.
pub const PARTITION_COLUMN: &str = "event_time";
/// The table recording each hour's loaded file set.
pub const STATE_TABLE: &str = "_load_state";

/// How an hour's partition is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplaceStrategy {
    /// One load job into `table$YYYYMMDDHH` with WRITE_TRUNCATE: atomic, no query cost. The
    /// production default.
    PartitionDecorator,
    /// A load job into a staging table, then one multi-statement transaction that deletes the
    /// hour from the table and inserts the staging rows. For endpoints without partition
    /// decorators (the bqemulator emulator rejects `table$…` ids).
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
    /// How each hour is replaced.
    pub replace: ReplaceStrategy,
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

fn refused(context: &str, error: impl std::fmt::Display) -> WarehouseError {
    WarehouseError::Refused(format!("{context}: {error}"))
}

fn transient(error: &BQError) -> bool {
    let text = error.to_string();
    ["rateLimitExceeded", "backendError", "internalError", "503", "500", "timed out", "connection"]
        .iter()
        .any(|marker| text.contains(marker))
}

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_max_times(5)
        .with_jitter()
}

/// The table definition: the contract's schema, HOUR partitioning, clustering.
pub fn table_definition(config: &BigQueryConfig) -> Value {
    json!({
        "tableReference": {"projectId": config.project, "datasetId": config.dataset, "tableId": config.table},
        "description": "clickstream raw events: one row per enriched event, loaded hour by hour from the lake.",
        "schema": {"fields": event_model::schema::bigquery_schema_json()},
        "timePartitioning": {"type": "HOUR", "field": PARTITION_COLUMN},
        "clustering": {"fields": CLUSTERING},
        "requirePartitionFilter": false,
    })
}

/// The load job for one hour: into the partition decorator (or the hour's staging table),
/// WRITE_TRUNCATE, field additions allowed.
pub fn load_job(config: &BigQueryConfig, hour: DateTime<Utc>, source_uris: Option<Vec<String>>) -> Value {
    let destination = match config.replace {
        ReplaceStrategy::PartitionDecorator => format!("{}${}", config.table, hour.format("%Y%m%d%H")),
        ReplaceStrategy::StagingTable => staging_table(config, hour),
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
        "timePartitioning": {"type": "HOUR", "field": PARTITION_COLUMN},
        "clustering": {"fields": CLUSTERING},
        "parquetOptions": {"enableListInference": true},
        "decimalTargetTypes": ["NUMERIC", "BIGNUMERIC"],
    });
    if let Some(uris) = source_uris {
        load["sourceUris"] = json!(uris);
    }
    if config.replace == ReplaceStrategy::StagingTable {
        let fields = load.as_object_mut();
        if let Some(fields) = fields {
            fields.remove("schemaUpdateOptions");
            fields.remove("timePartitioning");
            fields.remove("clustering");
        }
        load["createDisposition"] = json!("CREATE_IF_NEEDED");
    }
    let mut job = json!({
        "jobReference": {
            "projectId": config.project,
            "jobId": format!("clickstream_load_{}_{}", hour.format("%Y%m%d%H"), uuid_like()),
        },
        "configuration": {"load": load, "labels": {"component": "clickstream-loader"}},
    });
    if let Some(location) = &config.location {
        job["jobReference"]["location"] = json!(location);
    }
    job
}

/// The staging table of one hour (StagingTable strategy).
pub fn staging_table(config: &BigQueryConfig, hour: DateTime<Utc>) -> String {
    format!("_staging_{}_{}", config.table, hour.format("%Y%m%d%H"))
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{nanos:x}")
}

impl BigQueryWarehouse {
    /// Connects with Application Default Credentials, or to the emulator at `config.endpoint`.
    pub async fn connect(config: BigQueryConfig, lake: Arc<dyn Lake>) -> Result<Self, WarehouseError> {
        let unavailable = |e: BQError| WarehouseError::Unavailable(format!("BigQuery: {e}"));
        let client = match &config.endpoint {
            Some(endpoint) => gcp_bigquery_client::client_builder::ClientBuilder::new()
                .with_v2_base_url(format!("{}/bigquery/v2", endpoint.trim_end_matches('/')))
                .build_from_authenticator(Arc::new(NoAuth))
                .await
                .map_err(unavailable)?,
            None => gcp_bigquery_client::client_builder::ClientBuilder::new()
                .build_from_application_default_credentials()
                .await
                .map_err(unavailable)?,
        };
        Ok(Self { config, client, lake, http: reqwest::Client::new() })
    }

    async fn query(&self, sql: String) -> Result<Vec<Vec<Value>>, WarehouseError> {
        let mut request: QueryRequest = serde_json::from_value(json!({"query": sql, "useLegacySql": false}))
            .map_err(|e| refused("query request", e))?;
        request.location = self.config.location.clone();
        let response = (|| async { self.client.job().query(&self.config.project, request.clone()).await })
            .retry(backoff())
            .when(transient)
            .await
            .map_err(|e| refused("query", e))?;
        let value = serde_json::to_value(&response).map_err(|e| refused("query response", e))?;
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

    async fn wait_for(&self, job_id: &str) -> Result<Value, WarehouseError> {
        // Bounded: a load job that takes more than ~30 minutes is reported as failed.
        for attempt in 0..600u32 {
            let job = self
                .client
                .job()
                .get_job(&self.config.project, job_id, self.config.location.as_deref())
                .await
                .map_err(|e| refused("job status", e))?;
            let job = serde_json::to_value(&job).map_err(|e| refused("job status", e))?;
            if job["status"]["state"] == "DONE" {
                if let Some(error) = job["status"].get("errorResult").filter(|e| !e.is_null()) {
                    let details: Vec<String> = job["status"]["errors"]
                        .as_array()
                        .map(|errors| errors.iter().filter_map(|e| e["message"].as_str().map(str::to_owned)).collect())
                        .unwrap_or_default();
                    return Err(WarehouseError::Refused(format!(
                        "load job {job_id} failed: {}{}",
                        error["message"].as_str().unwrap_or("unknown error"),
                        if details.is_empty() { String::new() } else { format!(" ({})", details.join("; ")) }
                    )));
                }
                return Ok(job);
            }
            tokio::time::sleep(Duration::from_millis(if attempt < 10 { 300 } else { 3_000 })).await;
        }
        Err(WarehouseError::Refused(format!("load job {job_id} did not finish")))
    }

    /// Sends a load job whose data is uploaded in the request (multipart/related).
    async fn upload_job(&self, job: &Value, files: &[ObjectMeta]) -> Result<String, WarehouseError> {
        let endpoint = self.config.endpoint.clone().unwrap_or_else(|| "https://bigquery.googleapis.com".into());
        let url = format!(
            "{}/upload/bigquery/v2/projects/{}/jobs?uploadType=multipart",
            endpoint.trim_end_matches('/'),
            self.config.project
        );
        let mut job_id = String::new();
        // One job per file: a load job takes one uploaded file. The first replaces the partition,
        // the others append to it.
        for (index, file) in files.iter().enumerate() {
            let data = self.lake.get(&file.path).await.map_err(|e| refused(&file.path, e))?;
            let mut this = job.clone();
            if index > 0 {
                this["configuration"]["load"]["writeDisposition"] = json!("WRITE_APPEND");
                this["jobReference"]["jobId"] =
                    json!(format!("{}_{index}", job["jobReference"]["jobId"].as_str().unwrap_or("load")));
            }
            let boundary = format!("clickstream{}", uuid_like());
            let mut body = Vec::with_capacity(data.len() + 4096);
            body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{this}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
            body.extend_from_slice(&data);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let mut request = self
                .http
                .post(&url)
                .header("Content-Type", format!("multipart/related; boundary={boundary}"))
                .body(body);
            if self.config.endpoint.is_none() {
                let token = adc_token().await?;
                request = request.bearer_auth(token);
            }
            let response = request.send().await.map_err(|e| WarehouseError::Unavailable(format!("upload: {e}")))?;
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                return Err(WarehouseError::Refused(format!(
                    "upload of {} refused: HTTP {status}: {answer}",
                    file.path
                )));
            }
            job_id = answer["jobReference"]["jobId"].as_str().unwrap_or_default().to_owned();
            self.wait_for(&job_id).await?;
        }
        Ok(job_id)
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

#[async_trait]
impl Warehouse for BigQueryWarehouse {
    async fn prepare(&mut self) -> Result<(), WarehouseError> {
        let c = &self.config;
        if self.client.dataset().get(&c.project, &c.dataset).await.is_err() {
            let mut dataset = json!({"datasetReference": {"projectId": c.project, "datasetId": c.dataset}});
            if let Some(location) = &c.location {
                dataset["location"] = json!(location);
            }
            let dataset: Dataset = serde_json::from_value(dataset).map_err(|e| refused("dataset", e))?;
            self.client.dataset().create(dataset).await.map_err(|e| refused("create dataset", e))?;
        }
        if self.client.table().get(&c.project, &c.dataset, &c.table, None).await.is_err() {
            let table: Table = serde_json::from_value(table_definition(c)).map_err(|e| refused("table", e))?;
            self.client.table().create(table).await.map_err(|e| refused("create table", e))?;
        }
        if self.client.table().get(&c.project, &c.dataset, STATE_TABLE, None).await.is_err() {
            let state: Table = serde_json::from_value(json!({
                "tableReference": {"projectId": c.project, "datasetId": c.dataset, "tableId": STATE_TABLE},
                "description": "Which lake files each hour of the raw table was last loaded from (clickstream-loader).",
                "schema": {"fields": [
                    {"name": "hour", "type": "TIMESTAMP", "mode": "REQUIRED"},
                    {"name": "file_set", "type": "STRING", "mode": "REQUIRED"},
                    {"name": "files", "type": "STRING", "mode": "REQUIRED"},
                    {"name": "row_count", "type": "INTEGER", "mode": "REQUIRED"},
                    {"name": "loaded_at", "type": "TIMESTAMP", "mode": "REQUIRED"}
                ]},
            }))
            .map_err(|e| refused("state table", e))?;
            self.client.table().create(state).await.map_err(|e| refused("create state table", e))?;
        }
        Ok(())
    }

    async fn loaded(&mut self) -> Result<HashMap<DateTime<Utc>, String>, WarehouseError> {
        let c = &self.config;
        let rows = self
            .query(format!(
                "SELECT FORMAT_TIMESTAMP('%Y-%m-%dT%H:00:00Z', hour), ARRAY_AGG(file_set ORDER BY loaded_at DESC LIMIT 1)[OFFSET(0)] \
                 FROM `{}.{}.{STATE_TABLE}` GROUP BY 1",
                c.project, c.dataset
            ))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let hour = row.first()?.as_str()?.parse().ok()?;
                Some((hour, row.get(1)?.as_str()?.to_owned()))
            })
            .collect())
    }

    async fn load_hour(
        &mut self,
        hour: DateTime<Utc>,
        files: &[ObjectMeta],
        file_set: &str,
    ) -> Result<LoadOutcome, WarehouseError> {
        let c = self.config.clone();
        let uris =
            c.gcs_lake.as_ref().map(|root| files.iter().map(|f| format!("{root}{}", f.path)).collect::<Vec<_>>());
        let job = load_job(&c, hour, uris.clone());
        if c.replace == ReplaceStrategy::StagingTable {
            let staging = staging_table(&c, hour);
            let _ = self.client.table().delete(&c.project, &c.dataset, &staging).await;
            let table: Table = serde_json::from_value(json!({
                "tableReference": {"projectId": c.project, "datasetId": c.dataset, "tableId": staging},
                "schema": {"fields": event_model::schema::bigquery_schema_json()},
            }))
            .map_err(|e| refused("staging table", e))?;
            self.client.table().create(table).await.map_err(|e| refused("create staging table", e))?;
        }
        if uris.is_some() {
            let typed: Job = serde_json::from_value(job.clone()).map_err(|e| refused("load job", e))?;
            let inserted = (|| async { self.client.job().insert(&c.project, typed.clone()).await })
                .retry(backoff())
                .when(transient)
                .await
                .map_err(|e| refused(&format!("load job for {hour}"), e))?;
            let job_id = inserted.job_reference.and_then(|r| r.job_id).unwrap_or_default();
            self.wait_for(&job_id).await?;
        } else {
            self.upload_job(&job, files).await?;
        }
        let start = hour.format("%Y-%m-%d %H:00:00+00").to_string();
        if c.replace == ReplaceStrategy::StagingTable {
            let staging = staging_table(&c, hour);
            let columns: Vec<String> = event_model::schema::FIELDS.iter().map(|f| format!("`{}`", f.name)).collect();
            let columns = columns.join(", ");
            let hour_filter = format!(
                "{PARTITION_COLUMN} >= TIMESTAMP('{start}') AND {PARTITION_COLUMN} < TIMESTAMP_ADD(TIMESTAMP('{start}'), INTERVAL 1 HOUR)"
            );
            let (project, dataset) = (&c.project, &c.dataset);
            let table = format!("`{project}.{dataset}.{}`", c.table);
            self.query(format!("DELETE FROM {table} WHERE {hour_filter}")).await?;
            self.query(format!(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM `{project}.{dataset}.{staging}` WHERE {hour_filter}"
            ))
            .await?;
            self.client
                .table()
                .delete(&c.project, &c.dataset, &staging)
                .await
                .map_err(|e| refused("drop staging table", e))?;
        }
        let rows = self
            .query(format!(
                "SELECT COUNT(*) FROM `{}.{}.{}` WHERE {PARTITION_COLUMN} >= TIMESTAMP('{start}') \
                 AND {PARTITION_COLUMN} < TIMESTAMP_ADD(TIMESTAMP('{start}'), INTERVAL 1 HOUR)",
                c.project, c.dataset, c.table
            ))
            .await?;
        let count =
            rows.first().and_then(|r| r.first()).and_then(|v| v.as_str()).and_then(|v| v.parse().ok()).unwrap_or(0);
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        self.query(format!(
            "INSERT INTO `{}.{}.{STATE_TABLE}` (hour, file_set, files, row_count, loaded_at) \
             VALUES (TIMESTAMP('{start}'), '{file_set}', '{}', {count}, CURRENT_TIMESTAMP())",
            c.project,
            c.dataset,
            serde_json::to_string(&names).unwrap_or_default().replace('\\', "\\\\").replace('\'', "\\'")
        ))
        .await?;
        Ok(LoadOutcome { rows: count, added_columns: Vec::new() })
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
        }
    }

    #[test]
    fn the_production_load_job_reads_gs_objects_into_the_hour_partition_with_truncate() {
        let hour: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let uris = vec!["gs://shop-lake/events/dt=2026-11-24/hour=10/spool-1.parquet".to_owned()];
        let job = load_job(&config(Some("gs://shop-lake/")), hour, Some(uris.clone()));
        let load = &job["configuration"]["load"];
        assert_eq!(load["destinationTable"]["tableId"], "events$2026112410");
        assert_eq!(load["sourceUris"], json!(uris));
        assert_eq!(load["writeDisposition"], "WRITE_TRUNCATE");
        assert_eq!(load["sourceFormat"], "PARQUET");
        assert_eq!(load["schemaUpdateOptions"], json!(["ALLOW_FIELD_ADDITION"]));
        assert_eq!(load["timePartitioning"], json!({"type": "HOUR", "field": "event_time"}));
        assert_eq!(job["jobReference"]["location"], "EU");
        // The typed client accepts exactly this request.
        let typed: Job = serde_json::from_value(job.clone()).unwrap();
        let round_trip = serde_json::to_value(&typed).unwrap();
        assert_eq!(round_trip["configuration"]["load"]["sourceUris"], json!(uris));
        assert_eq!(round_trip["configuration"]["load"]["destinationTable"]["tableId"], "events$2026112410");
    }

    #[test]
    fn the_table_is_hour_partitioned_and_clustered_with_the_contract_schema() {
        let table = table_definition(&config(None));
        assert_eq!(table["timePartitioning"]["type"], "HOUR");
        assert_eq!(table["clustering"]["fields"], json!(CLUSTERING));
        assert_eq!(table["schema"]["fields"].as_array().unwrap().len(), event_model::schema::FIELDS.len());
        let _: Table = serde_json::from_value(table).unwrap();
    }
}
