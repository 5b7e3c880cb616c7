//! Compaction: merges the small files of a closed hour into one file plus a manifest.
//!
//! For an hour folder: read every Parquet file, merge them (duplicates by `event_id` removed,
//! keeping the earliest `received_at`; rows sorted by `event_time`), write
//! `compacted-<digest of the input names>.parquet`, write `_manifest.json` naming it and its
//! inputs, and only then delete the inputs. A crash at any step leaves either the inputs or the
//! compacted file (or both, which the next run merges again without duplicates), never neither.
//! Re-running on an already compacted hour does nothing.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration as TimeDelta, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::lake::{Lake, LakeError, hour_of_path, hour_prefix};
use crate::parquet_io::{ParquetError, ParquetSettings, merge_batches, read_batches, write_batches};

/// What compaction did to one hour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The hour, RFC 3339.
    pub hour: String,
    /// The file that now holds the hour.
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

/// Why an hour could not be compacted.
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

/// Name of an hour's manifest.
pub const MANIFEST: &str = "_manifest.json";

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

/// Compacts one hour. Returns `None` when there was nothing to do.
pub async fn compact_hour(
    lake: &dyn Lake,
    hour: DateTime<Utc>,
    settings: ParquetSettings,
) -> Result<Option<Manifest>, CompactError> {
    let prefix = hour_prefix(hour);
    let inputs: Vec<String> =
        lake.list(&prefix).await?.into_iter().map(|o| o.path).filter(|p| p.ends_with(".parquet")).collect();
    let already = inputs.len() == 1 && inputs[0].rsplit('/').next().is_some_and(|n| n.starts_with("compacted-"));
    if inputs.is_empty() || already {
        return Ok(None);
    }
    let mut batches = Vec::new();
    for path in &inputs {
        let data = lake.get(path).await?;
        let read = tokio::task::spawn_blocking(move || read_batches(data))
            .await
            .map_err(|e| LakeError::Remote(e.to_string()))?
            .map_err(|source| CompactError::Parquet { path: path.clone(), source })?;
        batches.extend(read);
    }
    let file = format!("{prefix}compacted-{}.parquet", digest(&inputs));
    let (data, rows, duplicates) = tokio::task::spawn_blocking(move || {
        let (merged, duplicates) = merge_batches(&batches)?;
        let rows = merged.num_rows();
        Ok::<_, ParquetError>((write_batches(&[merged], settings)?, rows, duplicates))
    })
    .await
    .map_err(|e| LakeError::Remote(e.to_string()))?
    .map_err(|source| CompactError::Parquet { path: file.clone(), source })?;
    let bytes = data.len() as u64;
    lake.put(&file, data).await?;
    let manifest = Manifest {
        hour: hour.to_rfc3339(),
        file: file.clone(),
        inputs: inputs.clone(),
        rows: rows as u64,
        bytes,
        duplicates_removed: duplicates as u64,
        compacted_at: Utc::now().to_rfc3339(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    lake.put(&format!("{prefix}{MANIFEST}"), manifest_bytes.into()).await?;
    for input in inputs.iter().filter(|i| **i != file) {
        lake.delete(input).await?;
    }
    metrics::counter!("clickstream_batcher_hours_compacted_total").increment(1);
    Ok(Some(manifest))
}

/// Hours with event files that ended at least `closed_for` ago.
pub async fn closed_hours(lake: &dyn Lake, closed_for: TimeDelta) -> Result<Vec<DateTime<Utc>>, LakeError> {
    let now = Utc::now();
    let current = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    let hours: BTreeSet<DateTime<Utc>> = lake
        .list("events/")
        .await?
        .iter()
        .filter_map(|o| hour_of_path(&o.path))
        .filter(|hour| *hour + TimeDelta::hours(1) + closed_for <= now && *hour < current)
        .collect();
    Ok(hours.into_iter().collect())
}
