//! Compaction: merges the small files of closed hours and closed days, with a manifest.
//!
//! * **An hour** (`compact_hour`): read every Parquet file of the hour's folder, merge them
//!   (duplicates by `event_id` removed, keeping the earliest `received_at`; rows sorted by
//!   `event_time`), write `compacted-<digest of the input names>.parquet` and `_manifest.json`
//!   naming it and its inputs, and only then delete the inputs.
//! * **A day** (`compact_day`): a closed day whose files together hold at most
//!   [`CompactSettings::day_file_max_bytes`] becomes one file in the day's
//!   [`DAY_FOLDER`](crate::layout::DAY_FOLDER) (see [`crate::layout`]), the same way: merged
//!   file, manifest, then the inputs and the hour manifests deleted. Sparse traffic so ends with
//!   one file per day, which the warehouse loads as one partition from one file; a day above the
//!   limit keeps one compacted file per hour, each already large. Late files for a compacted day
//!   are merged into a new day file by the next run.
//!
//! A crash at any step leaves either the inputs or the compacted file (or both, which the next
//! run merges again without duplicates), never neither; while both exist, the manifest next to
//! the compacted file names the inputs it already holds, and the loader leaves those out.
//! Re-running on an already compacted hour or day does nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration as TimeDelta, DurationRound, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::lake::{Lake, LakeError, ObjectMeta, hour_of_path, hour_prefix};
use crate::layout::{day_file_prefix, day_of_path, day_prefix, is_day_file};
use crate::parquet_io::{ParquetError, ParquetSettings, merge_batches, read_batches, write_batches};

/// What compaction did to one hour or one day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The hour, RFC 3339, for an hour's manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<String>,
    /// The day, `YYYY-MM-DD`, for a day's manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// The hours (`YYYY-MM-DDTHH`) whose events the file holds.
    #[serde(default)]
    pub hours: Vec<String>,
    /// The file that now holds the hour or day.
    pub file: String,
    /// The files merged into it.
    pub inputs: Vec<String>,
    /// Rows in the compacted file.
    pub rows: u64,
    /// Bytes of the compacted file.
    #[serde(default)]
    pub bytes: u64,
    /// Duplicates removed while merging.
    pub duplicates_removed: u64,
    /// When compaction ran.
    pub compacted_at: String,
}

/// How compaction sizes its output.
#[derive(Clone, Copy, Debug)]
pub struct CompactSettings {
    /// How the merged files are written.
    pub parquet: ParquetSettings,
    /// A closed day whose files add up to at most this many bytes becomes one file; 0 keeps
    /// one file per hour. The merge holds the day's rows in memory: a few times this size.
    pub day_file_max_bytes: u64,
}

impl Default for CompactSettings {
    /// 128 MiB: a common target size for analytical Parquet files (one Spark task, one
    /// BigQuery load file), and a merge that fits the compactor job's memory.
    fn default() -> Self {
        Self { parquet: ParquetSettings::default(), day_file_max_bytes: 128 * 1024 * 1024 }
    }
}

/// Why an hour or a day could not be compacted.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The error.
        source: ParquetError,
    },
}

/// Name of an hour's or a day's manifest.
pub const MANIFEST: &str = "_manifest.json";

/// Prefix of the files compaction writes.
pub const COMPACTED_PREFIX: &str = "compacted-";

fn digest(names: &[String]) -> String {
    // FNV-1a over the sorted input names: a stable, dependency-free content name.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for name in names {
        for byte in name.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// True for a file written by compaction.
pub fn is_compacted(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|name| name.starts_with(COMPACTED_PREFIX))
}

fn hour_label(hour: DateTime<Utc>) -> String {
    hour.format("%Y-%m-%dT%H").to_string()
}

/// Reads `inputs`, merges them and stores the result at `file` with its manifest in
/// `manifest_path`, then deletes the inputs and `stale` (manifests the merge replaces).
async fn merge_into(
    lake: &dyn Lake,
    inputs: &[String],
    file: String,
    manifest_path: String,
    mut manifest: Manifest,
    stale: &[String],
    settings: ParquetSettings,
) -> Result<Manifest, CompactError> {
    let mut batches = Vec::new();
    let mut hours = BTreeSet::new();
    for path in inputs {
        let data = lake.get(path).await?;
        let read = tokio::task::spawn_blocking(move || read_batches(data))
            .await
            .map_err(LakeError::internal)?
            .map_err(|source| CompactError::Parquet { path: path.clone(), source })?;
        batches.extend(read);
        match hour_of_path(path) {
            Some(hour) => {
                hours.insert(hour_label(hour));
            }
            // An earlier day file: its manifest knows its hours.
            None => hours.extend(day_file_hours(lake, path).await?),
        }
    }
    let (data, rows, duplicates) = tokio::task::spawn_blocking(move || {
        let (merged, duplicates) = merge_batches(&batches)?;
        let rows = merged.num_rows();
        Ok::<_, ParquetError>((write_batches(&[merged], settings)?, rows, duplicates))
    })
    .await
    .map_err(LakeError::internal)?
    .map_err(|source| CompactError::Parquet { path: file.clone(), source })?;
    manifest.bytes = data.len() as u64;
    manifest.rows = rows as u64;
    manifest.duplicates_removed = duplicates as u64;
    manifest.hours = hours.into_iter().collect();
    manifest.file = file.clone();
    manifest.inputs = inputs.to_vec();
    manifest.compacted_at = Utc::now().to_rfc3339();
    lake.put(&file, data).await?;
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    lake.put(&manifest_path, manifest_bytes.into()).await?;
    for input in inputs.iter().filter(|i| **i != file) {
        lake.delete(input).await?;
    }
    for path in stale.iter().filter(|p| **p != manifest_path) {
        lake.delete(path).await?;
    }
    Ok(manifest)
}

/// The hours a compacted day file holds, from the manifest beside it (empty when it is gone).
async fn day_file_hours(lake: &dyn Lake, path: &str) -> Result<Vec<String>, LakeError> {
    let Some(folder) = path.rsplit_once('/').map(|(folder, _)| folder) else { return Ok(Vec::new()) };
    match lake.get(&format!("{folder}/{MANIFEST}")).await {
        Ok(bytes) => Ok(serde_json::from_slice::<Manifest>(&bytes).map(|m| m.hours).unwrap_or_default()),
        Err(LakeError::NotFound { .. }) => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

fn parquet(objects: &[ObjectMeta]) -> Vec<String> {
    objects.iter().map(|o| o.path.clone()).filter(|p| p.ends_with(".parquet")).collect()
}

/// Compacts one hour. Returns `None` when there was nothing to do.
pub async fn compact_hour(
    lake: &dyn Lake,
    hour: DateTime<Utc>,
    settings: ParquetSettings,
) -> Result<Option<Manifest>, CompactError> {
    let prefix = hour_prefix(hour);
    let inputs = parquet(&lake.list(&prefix).await?);
    let already = inputs.len() == 1 && is_compacted(&inputs[0]);
    if inputs.is_empty() || already {
        return Ok(None);
    }
    let file = format!("{prefix}{COMPACTED_PREFIX}{}.parquet", digest(&inputs));
    let manifest = Manifest { hour: Some(hour.to_rfc3339()), ..Manifest::default() };
    let manifest = merge_into(lake, &inputs, file, format!("{prefix}{MANIFEST}"), manifest, &[], settings).await?;
    metrics::counter!("clickstream_batcher_hours_compacted_total").increment(1);
    Ok(Some(manifest))
}

/// What compaction did to one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DayCompaction {
    /// Nothing to do: no files, or already one file.
    Nothing,
    /// The day became one file.
    Day(Manifest),
    /// The day is too large for one file: its hours were compacted one by one (those that
    /// needed it).
    Hours(Vec<Manifest>),
}

/// Compacts one day: into one file when its files hold at most
/// `settings.day_file_max_bytes` (or it already has a day file), else hour by hour.
pub async fn compact_day(
    lake: &dyn Lake,
    day: NaiveDate,
    settings: CompactSettings,
) -> Result<DayCompaction, CompactError> {
    let objects = lake.list(&day_prefix(day)).await?;
    let files: Vec<&ObjectMeta> =
        objects.iter().filter(|o| o.path.ends_with(".parquet") && day_of_path(&o.path) == Some(day)).collect();
    if files.is_empty() {
        return Ok(DayCompaction::Nothing);
    }
    let has_day_file = files.iter().any(|f| is_day_file(&f.path));
    let total: u64 = files.iter().map(|f| f.size).sum();
    if files.len() == 1 && (has_day_file || is_compacted(&files[0].path)) {
        return Ok(DayCompaction::Nothing);
    }
    if !has_day_file && (settings.day_file_max_bytes == 0 || total > settings.day_file_max_bytes) {
        let hours: BTreeSet<DateTime<Utc>> = files.iter().filter_map(|f| hour_of_path(&f.path)).collect();
        let mut manifests = Vec::new();
        for hour in hours {
            if let Some(manifest) = compact_hour(lake, hour, settings.parquet).await? {
                manifests.push(manifest);
            }
        }
        return Ok(if manifests.is_empty() { DayCompaction::Nothing } else { DayCompaction::Hours(manifests) });
    }
    let inputs: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let folder = day_file_prefix(day);
    let file = format!("{folder}{COMPACTED_PREFIX}{}.parquet", digest(&inputs));
    let stale: Vec<String> =
        objects.iter().map(|o| o.path.clone()).filter(|p| p.ends_with(MANIFEST) && hour_of_path(p).is_some()).collect();
    let manifest = Manifest { day: Some(day.format("%Y-%m-%d").to_string()), ..Manifest::default() };
    let manifest =
        merge_into(lake, &inputs, file, format!("{folder}{MANIFEST}"), manifest, &stale, settings.parquet).await?;
    metrics::counter!("clickstream_batcher_days_compacted_total").increment(1);
    Ok(DayCompaction::Day(manifest))
}

/// Every hour and day with event files, as the lake lists them.
async fn lake_periods(lake: &dyn Lake) -> Result<(BTreeSet<DateTime<Utc>>, BTreeSet<NaiveDate>), LakeError> {
    let objects = lake.list("events/").await?;
    let hours = objects.iter().filter(|o| o.path.ends_with(".parquet")).filter_map(|o| hour_of_path(&o.path)).collect();
    let days = objects.iter().filter(|o| o.path.ends_with(".parquet")).filter_map(|o| day_of_path(&o.path)).collect();
    Ok((hours, days))
}

/// Hours with event files that ended at least `closed_for` ago.
pub async fn closed_hours(lake: &dyn Lake, closed_for: TimeDelta) -> Result<Vec<DateTime<Utc>>, LakeError> {
    let now = Utc::now();
    let current = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    let (hours, _) = lake_periods(lake).await?;
    Ok(hours.into_iter().filter(|hour| *hour + TimeDelta::hours(1) + closed_for <= now && *hour < current).collect())
}

/// What to compact when no hour or day is named: every day that ended at least `closed_for`
/// ago, and the closed hours of the days still open.
pub async fn closed_work(
    lake: &dyn Lake,
    closed_for: TimeDelta,
) -> Result<(Vec<NaiveDate>, Vec<DateTime<Utc>>), LakeError> {
    let now = Utc::now();
    let (hours, days) = lake_periods(lake).await?;
    let day_end = |day: NaiveDate| day.and_hms_opt(0, 0, 0).map(|t| t.and_utc() + TimeDelta::days(1));
    let closed_days: Vec<NaiveDate> =
        days.into_iter().filter(|d| day_end(*d).is_some_and(|end| end + closed_for <= now)).collect();
    let closed: BTreeSet<NaiveDate> = closed_days.iter().copied().collect();
    let current = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    let open_hours = hours
        .into_iter()
        .filter(|hour| !closed.contains(&hour.date_naive()))
        .filter(|hour| *hour + TimeDelta::hours(1) + closed_for <= now && *hour < current)
        .collect();
    Ok((closed_days, open_hours))
}

/// The inputs that compaction already merged into a file still beside them — what a run
/// killed between writing the merged file and deleting its inputs leaves — named by the
/// manifest next to the merged file: a reader of `objects` must leave them out. `objects` is a
/// listing of one day or more. Only a folder whose merged file shares its hour (or, for a day
/// file, its day) with other files is read, so a clean lake costs no reads.
pub async fn superseded_inputs(lake: &dyn Lake, objects: &[ObjectMeta]) -> Result<BTreeSet<String>, LakeError> {
    // Per folder: does it hold a compacted file, and how many Parquet files; per day: how many.
    let mut folders: BTreeMap<&str, (bool, usize)> = BTreeMap::new();
    let mut per_day: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for object in objects.iter().filter(|o| o.path.ends_with(".parquet")) {
        let Some((folder, _)) = object.path.rsplit_once('/') else { continue };
        let entry = folders.entry(folder).or_default();
        entry.0 |= is_compacted(&object.path);
        entry.1 += 1;
        if let Some(day) = day_of_path(&object.path) {
            *per_day.entry(day).or_default() += 1;
        }
    }
    let present: BTreeSet<&str> = objects.iter().map(|o| o.path.as_str()).collect();
    let mut superseded = BTreeSet::new();
    for (folder, (compacted, count)) in folders {
        let day_folder = folder.ends_with(crate::layout::DAY_FOLDER);
        let others = if day_folder {
            day_of_path(&format!("{folder}/x")).and_then(|day| per_day.get(&day)).copied().unwrap_or(0) > count
        } else {
            count > 1
        };
        if !compacted || !others {
            continue;
        }
        let manifest = match lake.get(&format!("{folder}/{MANIFEST}")).await {
            Ok(bytes) => serde_json::from_slice::<Manifest>(&bytes).ok(),
            Err(LakeError::NotFound { .. }) => None,
            Err(error) => return Err(error),
        };
        if let Some(manifest) = manifest.filter(|m| present.contains(m.file.as_str())) {
            superseded.extend(manifest.inputs.into_iter().filter(|input| *input != manifest.file));
        }
    }
    Ok(superseded)
}
