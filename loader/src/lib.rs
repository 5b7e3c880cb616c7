//! The loader: lake → warehouse, one hour at a time, idempotently.
//!
//! * [`plan`] — which hours to load: the lake's file set per hour against what the warehouse
//!   recorded, plus forced ranges;
//! * [`duckdb`] — the embedded warehouse (DuckDB, through the project venv's Python);
//! * [`bigquery`] — BigQuery: dataset and HOUR-partitioned, clustered table, load jobs that
//!   replace one partition each.

pub mod bigquery;
pub mod duckdb;
pub mod plan;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Why the warehouse refused or failed a step.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The warehouse answered with an error (its own message included).
    #[error("{0}")]
    Refused(String),
    /// The warehouse could not be reached or started.
    #[error("{0}")]
    Unavailable(String),
}

/// Rows a load wrote, and what else it reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOutcome {
    /// Rows now in the hour's partition.
    pub rows: u64,
    /// Columns the load added to the table.
    pub added_columns: Vec<String>,
}

/// A warehouse the loader fills.
#[async_trait]
pub trait Warehouse: Send {
    /// Creates what is missing (dataset or schema, the events table, the state table).
    async fn prepare(&mut self) -> Result<(), WarehouseError>;
    /// The file-set digest each loaded hour was last loaded with.
    async fn loaded(&mut self) -> Result<std::collections::HashMap<DateTime<Utc>, String>, WarehouseError>;
    /// Replaces the hour's rows with those of `files` (lake paths) and records `file_set`.
    async fn load_hour(
        &mut self,
        hour: DateTime<Utc>,
        files: &[batcher::lake::ObjectMeta],
        file_set: &str,
    ) -> Result<LoadOutcome, WarehouseError>;
    /// Where it is, for logs.
    fn describe(&self) -> String;
}
