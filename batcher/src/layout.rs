//! Where event files live in the lake, and which warehouse partition each belongs to.
//!
//! ```text
//! events/dt=YYYY-MM-DD/hour=HH/<name>.parquet                         events of one hour
//! events/dt=YYYY-MM-DD/hour=HH/_manifest.json                         written by hour compaction
//! events/dt=YYYY-MM-DD/hour=__HIVE_DEFAULT_PARTITION__/<name>.parquet a compacted day
//! events/dt=YYYY-MM-DD/hour=__HIVE_DEFAULT_PARTITION__/_manifest.json written by day compaction
//! ```
//!
//! The batcher writes hour files. Compaction merges a closed day whose files are small into one
//! file in the day's `hour=__HIVE_DEFAULT_PARTITION__` folder: Hive's name for a null partition
//! value, because that file's rows span several hours. Every file keeps the same two folder
//! levels, so Hive-partitioned readers (Spark, DuckDB, pyarrow) read the whole lake with one
//! glob (`events/*/*/*.parquet`) and see `hour` as null for the rows of a compacted day; filter
//! on `event_time` to select hours.
//!
//! The warehouse table is partitioned by DAY on `event_time`, so a lake day is a partition.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// Folder name of a day's compacted file: Hive's default (null) partition value.
pub const DAY_FOLDER: &str = "hour=__HIVE_DEFAULT_PARTITION__";

/// The folder of one day, e.g. `events/dt=2026-11-24/`.
pub fn day_prefix(day: NaiveDate) -> String {
    format!("events/dt={:04}-{:02}-{:02}/", day.year(), day.month(), day.day())
}

/// The folder of a compacted day's file, e.g. `events/dt=2026-11-24/hour=__HIVE_DEFAULT_PARTITION__/`.
pub fn day_file_prefix(day: NaiveDate) -> String {
    format!("{}{DAY_FOLDER}/", day_prefix(day))
}

/// The day an event-file path belongs to (hour files and compacted day files alike).
pub fn day_of_path(path: &str) -> Option<NaiveDate> {
    let rest = path.strip_prefix("events/dt=")?;
    let (date, rest) = rest.split_once('/')?;
    rest.starts_with("hour=").then_some(())?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

/// True for a compacted day's file or manifest.
pub fn is_day_file(path: &str) -> bool {
    day_of_path(path).is_some() && path.contains(&format!("/{DAY_FOLDER}/"))
}

/// The UTC day of an instant.
pub fn day_of(instant: DateTime<Utc>) -> NaiveDate {
    instant.date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::{hour_of_path, hour_prefix};

    #[test]
    fn hour_and_day_files_belong_to_their_day() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(day_prefix(day), "events/dt=2026-11-24/");
        let hour_file = format!("{}a.parquet", hour_prefix("2026-11-24T07:00:00Z".parse().unwrap()));
        let day_file = format!("{}compacted-1.parquet", day_file_prefix(day));
        assert_eq!(day_file, "events/dt=2026-11-24/hour=__HIVE_DEFAULT_PARTITION__/compacted-1.parquet");
        assert_eq!(day_of_path(&hour_file), Some(day));
        assert_eq!(day_of_path(&day_file), Some(day));
        assert!(is_day_file(&day_file) && !is_day_file(&hour_file));
        // A day file is not an hour file: hour-level code leaves it alone.
        assert_eq!(hour_of_path(&day_file), None);
        assert_eq!(day_of_path("dead-letter/dt=2026-11-24/x.jsonl"), None);
        assert_eq!(day_of_path("events/dt=2026-11-24/stray.parquet"), None);
    }
}
