//! The raw events table's layout, one definition for both warehouses (and Terraform, which a
//! deploy test compares with it).
//!
//! **DAY partitions on `event_time`, clustered by `event_type, category_code, product_id`.**
//! BigQuery allows 10,000 partitions per table: ten years of days are 3,653, whatever the
//! volume, where HOUR partitions would run out after 416 days. A day of a shop with 1 M events
//! is roughly 0.7 GB in BigQuery, 100 M events roughly 70 GB (about 700 logical bytes a row); BigQuery prunes whole days on
//! `event_time` filters (what every dbt model reading the table uses) and, inside a day, skips
//! blocks by the clustering columns: the marts filter on the funnel step first and group by
//! category and product. A lake day (`events/dt=YYYY-MM-DD/…`) is one partition, replaced as a
//! whole by one load job however many of its hours changed, which keeps a day's loads to about
//! one per hourly run.
//!
//! In the embedded DuckDB twin the table is a plain table; a partition's rows are deleted and
//! inserted in one transaction from files already in `event_time` order, so DuckDB's
//! zone maps skip other days the way BigQuery prunes partitions.

/// The column the raw table is partitioned on.
pub const PARTITION_COLUMN: &str = "event_time";
/// The partitioning granularity (BigQuery `timePartitioning.type`).
pub const PARTITION_TYPE: &str = "DAY";
/// Columns the raw table is clustered by, in order.
pub const CLUSTERING: [&str; 3] = ["event_type", "category_code", "product_id"];
/// BigQuery's cap on partitions per table.
pub const MAX_PARTITIONS: u32 = 10_000;
/// The table recording every completed load of a partition (read by dbt to find changed days).
pub const PARTITION_LOADS_TABLE: &str = "_partition_loads";
/// The table recording every job submitted, failed ones included (the daily budget counts it).
pub const LOAD_JOBS_TABLE: &str = "_load_jobs";
/// The table recording every run: what it planned, did and deferred, and why it stopped.
pub const LOAD_RUNS_TABLE: &str = "_load_runs";
