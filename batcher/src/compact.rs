//! Compaction: merges the small files of closed hours and closed days, with a manifest.
//!
//! * **An hour** (`compact_hour`): read every Parquet file of the hour's folder, merge them
//!   (duplicates by `event_id` removed, keeping the earliest `received_at`; each input's rows
//!   stay in their `event_time` order), write `compacted-<digest of the input names>.parquet`
//!   and `_manifest.json` naming it and its inputs, and only then delete the inputs. Row groups
//!   are copied, not decoded, unless they hold a duplicate or are small (see `merge_files`).
//! * **A day** (`compact_day`): a closed day whose files together hold at most
//!   [`CompactSettings::day_file_max_bytes`] becomes one file in the day's
//!   [`DAY_FOLDER`](crate::layout::DAY_FOLDER) (see [`crate::layout`]), the same way: merged
//!   file, manifest, then the inputs and the hour manifests deleted. Sparse traffic so ends with
//!   one file per day, which the warehouse loads as one partition from one file; a day above the
//!   limit keeps one compacted file per hour, each already large. Late files for a compacted day
//!   are merged into a new day file by the next run. A day file holds its hours in order, each
//!   in row groups of its own (their `event_time` statistics say which hour), so building it
//!   mostly copies row groups; see `merge_files`.
//!
//! A crash at any step leaves either the inputs or the compacted file (or both, which the next
//! run merges again without duplicates), never neither; while both exist, the manifest next to
//! the compacted file names the inputs it already holds, and the loader leaves those out.
//! Re-running on an already compacted hour or day does nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use bytes::Bytes;
use chrono::{DateTime, Duration as TimeDelta, DurationRound, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::lake::{Lake, LakeError, ObjectMeta, hour_of_path, hour_prefix};
use crate::layout::{day_file_prefix, day_of_path, day_prefix, is_day_file};
use crate::parquet_io::{
    FileAppender, ParquetError, ParquetSettings, ParsedFile, merge_batches, read_batches, write_batches,
};

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
    /// one file per hour. The merge holds the day's files and the new one in memory (about
    /// twice this size) and decodes one hour at a time.
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
    let mut files = Vec::with_capacity(inputs.len());
    let mut hours = BTreeSet::new();
    for path in inputs {
        files.push((path.clone(), lake.get(path).await?));
        match hour_of_path(path) {
            Some(hour) => {
                hours.insert(hour_label(hour));
            }
            // An earlier day file: its manifest knows its hours.
            None => hours.extend(day_file_hours(lake, path).await?),
        }
    }
    let output = file.clone();
    let (data, rows, duplicates) = tokio::task::spawn_blocking(move || merge_files(files, &output, settings))
        .await
        .map_err(LakeError::internal)??;
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

/// Merges Parquet files of the lake into one, hour by hour in time order, without sorting or
/// re-encoding what need not be. Every copy of an event is found first from the `event_id` and
/// `received_at` columns alone ([`duplicate_rows`]); then each hour's row groups are written
/// in input order: a row group with no duplicate in it has its pages copied as they are (each
/// input is already sorted by `event_time` within itself) when it has at least a quarter of
/// [`ParquetSettings::row_group_rows`] rows or its hour comes from one file; the others are
/// decoded, their duplicates dropped, and encoded anew together, so many small files (hourly
/// Pub/Sub runs, a spool's segment edges) do not become as many tiny row groups. Memory: the inputs' bytes, the
/// output's, one id per row, and at most one row group's worth of decoded rows.
/// Files whose row groups cannot be assigned to one hour each (a day file written before
/// row groups were kept per hour) or whose schema differs are merged whole in memory.
/// Returns the file, its rows and the duplicates removed.
fn merge_files(
    files: Vec<(String, Bytes)>,
    output: &str,
    settings: ParquetSettings,
) -> Result<(Bytes, usize, usize), CompactError> {
    let failed = |path: &str| {
        let path = path.to_owned();
        move |source| CompactError::Parquet { path, source }
    };
    let mut parsed = Vec::with_capacity(files.len());
    for (path, data) in &files {
        parsed.push(ParsedFile::parse(data.clone()).map_err(failed(path))?);
    }
    let mut appender = FileAppender::new(settings).map_err(failed(output))?;
    // hour (µs) -> (file, row group), in file order
    let mut plan: BTreeMap<i64, Vec<(usize, usize)>> = BTreeMap::new();
    for (index, ((path, _), file)) in files.iter().zip(&parsed).enumerate() {
        let path_hour = hour_of_path(path).map(|hour| hour.timestamp_micros());
        for group in 0..file.row_groups() {
            match path_hour.or_else(|| file.row_group_hour(group)) {
                Some(hour) if appender.can_copy(file) => plan.entry(hour).or_default().push((index, group)),
                _ => return merge_in_memory(&files, output, settings),
            }
        }
    }
    let mut dropped = duplicate_rows(&parsed, &plan).map_err(failed(output))?;
    let duplicates = dropped.values().map(Vec::len).sum();
    let copy_at_least = (settings.row_group_rows / 4).max(1);
    for groups in plan.values() {
        // An hour from one file keeps the row groups its writer chose, however small.
        let one_source = groups.iter().all(|(file, _)| *file == groups[0].0);
        let mut pending: Vec<RecordBatch> = Vec::new();
        let mut pending_rows = 0;
        for &(file, group) in groups {
            let drop = dropped.remove(&(file, group)).unwrap_or_default();
            let rows = parsed[file].row_group_rows(group);
            if drop.is_empty() && (one_source || rows >= copy_at_least) {
                appender.copy_row_groups(&parsed[file], &[group]).map_err(failed(output))?;
                continue;
            }
            let batches = parsed[file].read_row_groups(vec![group]).map_err(failed(&files[file].0))?;
            let batches = without_rows(batches, &drop).map_err(failed(output))?;
            pending_rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
            pending.extend(batches);
            if pending_rows >= settings.row_group_rows {
                appender.write(&std::mem::take(&mut pending)).map_err(failed(output))?;
                pending_rows = 0;
            }
        }
        appender.write(&pending).map_err(failed(output))?;
    }
    let rows = appender.rows();
    Ok((appender.finish().map_err(failed(output))?, rows, duplicates))
}

/// The rows to leave out, by (file, row group): every copy of an event but the first received
/// (earliest `received_at`; a tie keeps the copy met first, in hour order and then in input
/// order). Reads only the `event_id` and `received_at` columns.
fn duplicate_rows(
    files: &[ParsedFile],
    plan: &BTreeMap<i64, Vec<(usize, usize)>>,
) -> Result<HashMap<(usize, usize), Vec<usize>>, ParquetError> {
    // event id -> (file, row group, row, received_at) of the copy kept so far
    let mut kept: HashMap<String, (usize, usize, usize, i64)> = HashMap::new();
    let mut dropped: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for groups in plan.values() {
        for &(file, group) in groups {
            for (row, (id, received)) in files[file].ids_and_arrivals(group)?.into_iter().enumerate() {
                match kept.get_mut(&id) {
                    None => {
                        kept.insert(id, (file, group, row, received));
                    }
                    Some(first) if received < first.3 => {
                        dropped.entry((first.0, first.1)).or_default().push(first.2);
                        *first = (file, group, row, received);
                    }
                    Some(_) => dropped.entry((file, group)).or_default().push(row),
                }
            }
        }
    }
    Ok(dropped)
}

/// `batches` (one row group, in order) without the rows numbered `rows` within them.
fn without_rows(batches: Vec<RecordBatch>, rows: &[usize]) -> Result<Vec<RecordBatch>, ParquetError> {
    if rows.is_empty() {
        return Ok(batches);
    }
    let rows: HashSet<usize> = rows.iter().copied().collect();
    let mut offset = 0;
    batches
        .into_iter()
        .map(|batch| {
            let keep: BooleanArray =
                (offset..offset + batch.num_rows()).map(|row| Some(!rows.contains(&row))).collect();
            offset += batch.num_rows();
            Ok(filter_record_batch(&batch, &keep)?)
        })
        .collect()
}

/// Merges `files` whole: every row decoded at once, duplicates removed, rows sorted.
fn merge_in_memory(
    files: &[(String, Bytes)],
    output: &str,
    settings: ParquetSettings,
) -> Result<(Bytes, usize, usize), CompactError> {
    let mut batches = Vec::new();
    for (path, data) in files {
        batches
            .extend(read_batches(data.clone()).map_err(|source| CompactError::Parquet { path: path.clone(), source })?);
    }
    let failed = |source| CompactError::Parquet { path: output.to_owned(), source };
    let (merged, duplicates) = merge_batches(&batches).map_err(failed)?;
    let rows = merged.num_rows();
    Ok((write_batches(&[merged], settings).map_err(failed)?, rows, duplicates))
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
