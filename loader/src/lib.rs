//! The loader: lake → warehouse, one day partition per job, idempotently, within a daily job
//! budget.
//!
//! * [`table`] — the raw table's layout (DAY partitions on `event_time`, clustering) and the
//!   loader's own tables;
//! * [`plan`] — which partitions to load: each lake day's file set against the one the
//!   warehouse recorded at its last load, however old the day, plus forced ranges; ordered
//!   newest first and cut at the budget;
//! * [`ledger`] — the daily job budget: every job is recorded before it is submitted, failed
//!   ones included, and a run stops before it would exceed the budget;
//! * [`duckdb`] — the embedded warehouse (DuckDB, through the project venv's Python);
//! * `bigquery` (feature `gcp`) — BigQuery: dataset, DAY-partitioned clustered table, one load job per
//!   partition into its decorator with WRITE_TRUNCATE.

#[cfg(feature = "gcp")]
pub mod bigquery;
pub mod duckdb;
pub mod ledger;
pub mod plan;
pub mod table;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

pub use ledger::{JobRecord, Ledger, RunRecord};

/// Why the warehouse refused or failed a step, by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The warehouse refused the request as such (bad schema, bad SQL, no permission):
    /// retrying the same request fails the same way.
    #[error("{0}")]
    Refused(String),
    /// The warehouse could not be reached, or failed in a way that may pass (5xx,
    /// `backendError`, a timeout, a reset connection): retry.
    #[error("{0}")]
    Unavailable(String),
    /// A rate limit (`rateLimitExceeded`, HTTP 429): retry after a backoff.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// A quota is used up (`quotaExceeded`, e.g. table modifications per day): every further
    /// job would fail too, so the run stops. The message names the limit.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The run's own daily job budget is spent; the next run continues.
    #[error("{0}")]
    BudgetExhausted(String),
}

impl WarehouseError {
    /// True when the same step may succeed if tried again after a pause.
    pub fn is_retryable(&self) -> bool {
        matches!(self, WarehouseError::Unavailable(_) | WarehouseError::RateLimited(_))
    }
}

/// Rows a load wrote, and what else it reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOutcome {
    /// Rows now in the partition.
    pub rows: u64,
    /// Columns the load added to the table.
    pub added_columns: Vec<String>,
    /// Rows of the files whose `event_time` falls outside the partition's day (not loaded).
    pub rows_outside: u64,
}

/// What the warehouse recorded of one partition's last load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedPartition {
    /// Digest of the file set it was loaded from.
    pub file_set: String,
    /// When that load completed.
    pub loaded_at: DateTime<Utc>,
}

/// What the warehouse knows of past loads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WarehouseState {
    /// The last load of each partition.
    pub partitions: HashMap<NaiveDate, LoadedPartition>,
    /// Jobs submitted on the table in the last 24 hours (failed ones included).
    pub jobs_last_24h: u64,
    /// The table's own partition expiration, when it has one (BigQuery).
    pub partition_expiration_days: Option<u32>,
}

/// One partition to replace.
#[derive(Clone, Copy, Debug)]
pub struct PartitionLoad<'a> {
    /// The day.
    pub day: NaiveDate,
    /// Its lake files (paths relative to the lake root), inputs already merged by compaction
    /// left out.
    pub files: &'a [batcher::lake::ObjectMeta],
    /// Digest of the day's file set, recorded with the load.
    pub file_set: &'a str,
}

/// A warehouse the loader fills.
#[async_trait]
pub trait Warehouse: Send {
    /// Creates what is missing (dataset or schema, the events table, the loader's tables) and
    /// checks that an existing events table has the layout the loader writes.
    async fn prepare(&mut self) -> Result<(), WarehouseError>;
    /// The recorded loads and the jobs of the last 24 hours; empty when nothing was prepared
    /// yet. Reads only.
    async fn state(&mut self) -> Result<WarehouseState, WarehouseError>;
    /// The lake paths each of `days` was last loaded from.
    async fn loaded_files(&mut self, days: &[NaiveDate]) -> Result<HashMap<NaiveDate, Vec<String>>, WarehouseError>;
    /// Replaces the day's rows with those of its files and records the load, taking a job of
    /// the ledger for every job it submits (before submitting it).
    async fn load_partition(
        &mut self,
        load: &PartitionLoad<'_>,
        ledger: &mut Ledger,
    ) -> Result<LoadOutcome, WarehouseError>;
    /// Records a job taken from the ledger, before it is submitted.
    async fn record_job(&mut self, job: &JobRecord) -> Result<(), WarehouseError>;
    /// Records a finished run.
    async fn record_run(&mut self, run: &RunRecord) -> Result<(), WarehouseError>;
    /// How many jobs loading a partition of `files` files takes.
    fn jobs_per_partition(&self, files: usize) -> u64 {
        let _ = files;
        1
    }
    /// Where it is, for logs.
    fn describe(&self) -> String;
}
