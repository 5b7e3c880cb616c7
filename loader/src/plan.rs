//! Which hours to load.
//!
//! The lake's file set of an hour is its sorted list of Parquet files with their sizes, digested.
//! An hour is loaded when its file set differs from the one the warehouse recorded at its last
//! load — new hours, late files, compaction — and skipped otherwise. `--from/--to` reload a range
//! whatever was recorded.

use std::collections::{BTreeMap, HashMap};

use batcher::lake::{Lake, LakeError, ObjectMeta, hour_of_path};
use chrono::{DateTime, Utc};

/// One hour's files in the lake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HourFiles {
    /// The hour.
    pub hour: DateTime<Utc>,
    /// Its Parquet files.
    pub files: Vec<ObjectMeta>,
    /// Digest of the file set.
    pub file_set: String,
}

/// Why an hour is (or is not) in the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Never loaded.
    New,
    /// Its files changed since the last load.
    Changed,
    /// Inside the forced --from/--to range.
    Forced,
    /// Loaded with exactly these files.
    UpToDate,
}

/// The digest of a file set: FNV-1a over sorted `path\0size\0` entries.
pub fn file_set_digest(files: &[ObjectMeta]) -> String {
    let mut sorted: Vec<&ObjectMeta> = files.iter().collect();
    sorted.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in sorted {
        for byte in file.path.bytes().chain([0]).chain(file.size.to_string().bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}-{}", files.len())
}

/// The lake's hours and their file sets.
pub async fn lake_hours(lake: &dyn Lake) -> Result<Vec<HourFiles>, LakeError> {
    let mut hours: BTreeMap<DateTime<Utc>, Vec<ObjectMeta>> = BTreeMap::new();
    for object in lake.list("events/").await? {
        if object.path.ends_with(".parquet")
            && let Some(hour) = hour_of_path(&object.path)
        {
            hours.entry(hour).or_default().push(object);
        }
    }
    Ok(hours.into_iter().map(|(hour, files)| HourFiles { hour, file_set: file_set_digest(&files), files }).collect())
}

/// Decides each hour's reason. `range` (inclusive) forces reloads.
pub fn decide(
    hours: &[HourFiles],
    loaded: &HashMap<DateTime<Utc>, String>,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<(HourFiles, Reason)> {
    hours
        .iter()
        .filter(|h| range.is_none_or(|(from, to)| h.hour >= from && h.hour <= to))
        .map(|h| {
            let reason = match (range, loaded.get(&h.hour)) {
                (Some(_), _) => Reason::Forced,
                (None, None) => Reason::New,
                (None, Some(set)) if *set != h.file_set => Reason::Changed,
                (None, Some(_)) => Reason::UpToDate,
            };
            (h.clone(), reason)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(text: &str, files: &[(&str, u64)]) -> HourFiles {
        let files: Vec<ObjectMeta> = files.iter().map(|(p, s)| ObjectMeta { path: (*p).into(), size: *s }).collect();
        HourFiles { hour: text.parse().unwrap(), file_set: file_set_digest(&files), files }
    }

    #[test]
    fn new_changed_and_unchanged_hours_are_told_apart() {
        let a = hour("2026-11-24T10:00:00Z", &[("x", 1)]);
        let b = hour("2026-11-24T11:00:00Z", &[("y", 1)]);
        let c = hour("2026-11-24T12:00:00Z", &[("z", 1), ("late", 5)]);
        let loaded = HashMap::from([
            (b.hour, b.file_set.clone()),
            (c.hour, file_set_digest(&[ObjectMeta { path: "z".into(), size: 1 }])),
        ]);
        let reasons: Vec<Reason> =
            decide(&[a.clone(), b.clone(), c.clone()], &loaded, None).into_iter().map(|(_, r)| r).collect();
        assert_eq!(reasons, [Reason::New, Reason::UpToDate, Reason::Changed]);
        let forced = decide(&[a, b.clone(), c], &loaded, Some((b.hour, b.hour)));
        assert_eq!(forced.len(), 1);
        assert_eq!(forced[0].1, Reason::Forced);
    }

    #[test]
    fn the_digest_depends_on_names_and_sizes_not_order() {
        let one = [ObjectMeta { path: "a".into(), size: 1 }, ObjectMeta { path: "b".into(), size: 2 }];
        let two = [one[1].clone(), one[0].clone()];
        assert_eq!(file_set_digest(&one), file_set_digest(&two));
        let grown = [one[0].clone(), ObjectMeta { path: "b".into(), size: 3 }];
        assert_ne!(file_set_digest(&one), file_set_digest(&grown));
    }
}
