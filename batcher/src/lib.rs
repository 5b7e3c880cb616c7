//! The batcher: drains the event queue into an hourly-partitioned Parquet lake.
//!
//! * [`lake`] — one object-store API over a local directory and GCS (feature `gcp`), atomic
//!   writes;
//! * [`layout`] — where hour and compacted-day files live, and the day partition of each;
//! * [`parquet_io`] — events ↔ Parquet: hour grouping, de-duplication, writer settings;
//! * [`writer`] — one flush to the lake, durable before its source is acknowledged;
//! * [`spool_source`] — the local spool, segment by segment, exactly once in effect;
//! * `pubsub_source` (feature `gcp`) — a Pub/Sub subscription with flow control, acked after
//!   the write;
//! * [`compact`] — merging the small files of closed hours and days, with a manifest;
//! * [`backfill`] — importing REES46 CSV exports into the same lake.

pub mod backfill;
pub mod compact;
pub mod lake;
pub mod layout;
pub mod parquet_io;
#[cfg(feature = "gcp")]
pub mod pubsub_source;
pub mod spool_source;
pub mod writer;
