//! Which partitions to load, in what order, within the budget.
//!
//! The lake's file set of a day is its sorted list of Parquet files (every hour folder and the
//! compacted day's folder) with their sizes and versions, digested. A day is loaded when its
//! file set differs from the one the warehouse recorded at its last load — a new day, a late
//! file however old, a compaction — and skipped otherwise; `--from/--to` reload a range
//! whatever was recorded. The plan runs newest day first (the marts' freshness depends on the
//! newest data; an old day's backfill can wait for the next run) and is cut where the daily job
//! budget ends: what is cut is still changed in the lake, so the next run plans it again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use batcher::compact::{MANIFEST, Manifest, superseded_inputs};
use batcher::lake::{Lake, LakeError, ObjectMeta, hour_of_path};
use batcher::layout::{day_of_path, is_day_file};
use chrono::NaiveDate;
use futures::StreamExt;
use serde::Serialize;

use crate::WarehouseState;
use crate::ledger::runs_needed;

/// One day's files in the lake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LakePartition {
    /// The day.
    pub day: NaiveDate,
    /// Its Parquet files, as listed.
    pub files: Vec<ObjectMeta>,
    /// Digest of the file set.
    pub file_set: String,
}

/// Why a partition is (or is not) in the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Never loaded.
    New,
    /// Its files changed since the last load.
    Changed,
    /// Inside the forced --from/--to range.
    Forced,
    /// Loaded with exactly these files.
    UpToDate,
    /// Older than the table's partition expiration: BigQuery would drop its rows.
    Expired,
}

/// The digest of a file set: FNV-1a over sorted `path\0size\0version\0` entries, and the
/// count. The version (GCS generation, local modification time) tells a rewritten object
/// with the same name and size from the one loaded before.
pub fn file_set_digest(files: &[ObjectMeta]) -> String {
    let mut sorted: Vec<&ObjectMeta> = files.iter().collect();
    sorted.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in sorted {
        let version = file.version.as_deref().unwrap_or_default();
        let entry = file
            .path
            .bytes()
            .chain([0])
            .chain(file.size.to_string().into_bytes())
            .chain([0])
            .chain(version.bytes())
            .chain([0]);
        for byte in entry {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}-{}", files.len())
}

/// The lake's days and their file sets, oldest first.
pub async fn lake_partitions(lake: &dyn Lake) -> Result<Vec<LakePartition>, LakeError> {
    let mut days: BTreeMap<NaiveDate, Vec<ObjectMeta>> = BTreeMap::new();
    for object in lake.list("events/").await? {
        if object.path.ends_with(".parquet")
            && let Some(day) = day_of_path(&object.path)
        {
            days.entry(day).or_default().push(object);
        }
    }
    Ok(days.into_iter().map(|(day, files)| LakePartition { day, file_set: file_set_digest(&files), files }).collect())
}

/// What to consider: a forced range of days, and the day before which partitions expire.
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection {
    /// Days to reload whatever was recorded (inclusive); only these are considered.
    pub range: Option<(NaiveDate, NaiveDate)>,
    /// Partitions older than this day are expired (never loaded).
    pub expire_before: Option<NaiveDate>,
}

/// Decides each partition's reason, newest day first.
pub fn decide(
    partitions: &[LakePartition],
    state: &WarehouseState,
    selection: Selection,
) -> Vec<(LakePartition, Reason)> {
    partitions
        .iter()
        .rev()
        .filter(|p| selection.range.is_none_or(|(from, to)| p.day >= from && p.day <= to))
        .map(|p| {
            let reason = match (selection.range, state.partitions.get(&p.day)) {
                _ if selection.expire_before.is_some_and(|before| p.day < before) => Reason::Expired,
                (Some(_), _) => Reason::Forced,
                (None, None) => Reason::New,
                (None, Some(loaded)) if loaded.file_set != p.file_set => Reason::Changed,
                (None, Some(_)) => Reason::UpToDate,
            };
            (p.clone(), reason)
        })
        .collect()
}

/// One partition to load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedJob {
    /// The day partition.
    pub partition: NaiveDate,
    /// Why it is loaded.
    pub reason: Reason,
    /// Jobs it takes (one, or one per file when the files are uploaded).
    pub jobs: u64,
    /// Hours with events in the partition (`YYYY-MM-DDTHH`).
    pub hours: Vec<String>,
    /// Hours whose files changed since the partition's last load (all of them for a new one).
    pub changed_hours: Vec<String>,
    /// Files loaded.
    pub files: usize,
    /// Bytes loaded.
    pub bytes: u64,
    /// Files left out because compaction already merged them into a file beside them.
    pub superseded_files: usize,
    /// The files loaded.
    #[serde(skip)]
    pub objects: Vec<ObjectMeta>,
    /// Digest of the day's whole file set, recorded with the load.
    #[serde(skip)]
    pub file_set: String,
}

/// Counts over a list of jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Jobs.
    pub jobs: u64,
    /// Partitions.
    pub partitions: u64,
    /// Hours with events.
    pub hours: u64,
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Totals {
    fn of<'a>(jobs: impl IntoIterator<Item = &'a PlannedJob>) -> Self {
        jobs.into_iter().fold(Totals::default(), |mut t, job| {
            t.jobs += job.jobs;
            t.partitions += 1;
            t.hours += job.hours.len() as u64;
            t.files += job.files as u64;
            t.bytes += job.bytes;
            t
        })
    }
}

/// The budget as the plan saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BudgetView {
    /// Jobs allowed per 24 hours (`null`: no budget).
    pub daily_jobs: Option<u64>,
    /// Jobs submitted in the last 24 hours.
    pub used_last_24h: u64,
    /// Jobs this run may submit (`null`: no budget).
    pub available: Option<u64>,
}

/// The raw table's layout, for the plan's reader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayoutView {
    /// `DAY`.
    pub partitioning: &'static str,
    /// `event_time`.
    pub field: &'static str,
    /// The clustering columns.
    pub clustering: Vec<&'static str>,
}

/// What a run will do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The warehouse and table.
    pub warehouse: String,
    /// The table's layout.
    pub layout: LayoutView,
    /// Days with files in the lake.
    pub lake_partitions: usize,
    /// Days loaded with exactly their current files.
    pub up_to_date: usize,
    /// Days older than the partition expiration, not loaded.
    pub expired: usize,
    /// The budget.
    pub budget: BudgetView,
    /// Everything to load, this run and later ones.
    pub totals: Totals,
    /// What this run loads.
    pub this_run: Totals,
    /// Runs the whole plan needs, each with a full budget after this one.
    pub runs_needed: u64,
    /// This run's jobs, in order.
    pub jobs: Vec<PlannedJob>,
    /// Jobs beyond this run's budget, left for later runs.
    pub deferred: Vec<PlannedJob>,
}

/// Builds the plan from the decisions: the jobs that fit `budget`'s available jobs run now,
/// the rest are deferred. `jobs_per_partition` says how many jobs a partition of n files takes.
pub fn build(
    warehouse: String,
    decided: Vec<(LakePartition, Reason)>,
    budget: BudgetView,
    jobs_per_partition: impl Fn(usize) -> u64,
) -> Plan {
    let lake_partitions = decided.len();
    let up_to_date = decided.iter().filter(|(_, r)| *r == Reason::UpToDate).count();
    let expired = decided.iter().filter(|(_, r)| *r == Reason::Expired).count();
    let mut jobs = Vec::new();
    let mut deferred = Vec::new();
    let mut left = budget.available;
    for (partition, reason) in decided {
        if matches!(reason, Reason::UpToDate | Reason::Expired) {
            continue;
        }
        let hours: BTreeSet<String> = partition
            .files
            .iter()
            .filter_map(|f| hour_of_path(&f.path))
            .map(|h| h.format("%Y-%m-%dT%H").to_string())
            .collect();
        let job = PlannedJob {
            partition: partition.day,
            reason,
            jobs: jobs_per_partition(partition.files.len()),
            changed_hours: if reason == Reason::New { hours.iter().cloned().collect() } else { Vec::new() },
            hours: hours.into_iter().collect(),
            files: partition.files.len(),
            bytes: partition.files.iter().map(|f| f.size).sum(),
            superseded_files: 0,
            objects: partition.files,
            file_set: partition.file_set,
        };
        match left {
            Some(n) if n < job.jobs || !deferred.is_empty() => deferred.push(job),
            Some(n) => {
                left = Some(n - job.jobs);
                jobs.push(job);
            }
            None => jobs.push(job),
        }
    }
    let this_run = Totals::of(&jobs);
    let totals = Totals::of(jobs.iter().chain(&deferred));
    Plan {
        warehouse,
        layout: LayoutView {
            partitioning: crate::table::PARTITION_TYPE,
            field: crate::table::PARTITION_COLUMN,
            clustering: crate::table::CLUSTERING.to_vec(),
        },
        lake_partitions,
        up_to_date,
        expired,
        budget,
        runs_needed: runs_needed(totals.jobs, budget.available, budget.daily_jobs),
        totals,
        this_run,
        jobs,
        deferred,
    }
}

/// Fills in what the listing alone cannot tell, reading the lake and the warehouse only where
/// needed: the inputs compaction already merged into a file beside them (left out of the load),
/// the hours a compacted day file holds (its manifest), and the hours that changed since each
/// partition's last load. `loaded_files` maps a changed day to the paths it was loaded from.
pub async fn resolve(
    plan: &mut Plan,
    lake: &dyn Lake,
    loaded_files: &HashMap<NaiveDate, Vec<String>>,
) -> Result<(), LakeError> {
    let all: Vec<ObjectMeta> = plan.jobs.iter().flat_map(|j| j.objects.iter().cloned()).collect();
    let superseded = superseded_inputs(lake, &all).await?;
    // The hours of compacted day files, from their manifests, a few reads at a time.
    let day_files: Vec<String> = plan
        .jobs
        .iter()
        .chain(&plan.deferred)
        .flat_map(|j| j.objects.iter())
        .filter(|o| is_day_file(&o.path))
        .map(|o| o.path.clone())
        .collect();
    let manifests: Vec<Result<(String, Vec<String>), LakeError>> = futures::stream::iter(day_files)
        .map(|path| async move {
            let folder = path.rsplit_once('/').map(|(folder, _)| folder).unwrap_or_default();
            match lake.get(&format!("{folder}/{MANIFEST}")).await {
                Ok(bytes) => {
                    let manifest = serde_json::from_slice::<Manifest>(&bytes).ok();
                    let hours = manifest.filter(|m| m.file == path).map(|m| m.hours).unwrap_or_default();
                    Ok((path, hours))
                }
                Err(error) if error.is_not_found() => Ok((path, Vec::new())),
                Err(error) => Err(error),
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut day_hours = HashMap::new();
    for manifest in manifests {
        let (path, hours) = manifest?;
        day_hours.insert(path, hours);
    }
    for job in plan.jobs.iter_mut().chain(plan.deferred.iter_mut()) {
        let before = job.objects.len();
        job.objects.retain(|o| !superseded.contains(&o.path));
        job.superseded_files = before - job.objects.len();
        job.files = job.objects.len();
        job.bytes = job.objects.iter().map(|o| o.size).sum();
        let hours_of = |objects: &[&ObjectMeta]| -> BTreeSet<String> {
            objects
                .iter()
                .flat_map(|o| match hour_of_path(&o.path) {
                    Some(hour) => vec![hour.format("%Y-%m-%dT%H").to_string()],
                    None => day_hours.get(&o.path).cloned().unwrap_or_default(),
                })
                .collect()
        };
        let current: Vec<&ObjectMeta> = job.objects.iter().collect();
        let hours = hours_of(&current);
        job.changed_hours = match (job.reason, loaded_files.get(&job.partition)) {
            (Reason::Changed, Some(before)) => {
                // An hour changed when a file of it appeared or went away; a rewritten file
                // with the same name counts for its hours.
                let before: BTreeSet<&str> = before.iter().map(String::as_str).collect();
                let now: BTreeSet<&str> = job.objects.iter().map(|o| o.path.as_str()).collect();
                let added: Vec<&ObjectMeta> =
                    job.objects.iter().filter(|o| !before.contains(o.path.as_str())).collect();
                let mut changed = hours_of(&added);
                for gone in before.difference(&now) {
                    if let Some(hour) = hour_of_path(gone) {
                        changed.insert(hour.format("%Y-%m-%dT%H").to_string());
                    }
                }
                if changed.is_empty() { hours.clone() } else { changed }
            }
            _ => hours.clone(),
        }
        .into_iter()
        .collect();
        job.hours = hours.into_iter().collect();
    }
    plan.this_run = Totals::of(&plan.jobs);
    plan.totals = Totals::of(plan.jobs.iter().chain(&plan.deferred));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadedPartition;

    fn partition(day: &str, files: &[(&str, u64)]) -> LakePartition {
        let files: Vec<ObjectMeta> =
            files.iter().map(|(p, s)| ObjectMeta { path: (*p).into(), size: *s, version: None }).collect();
        LakePartition { day: day.parse().unwrap(), file_set: file_set_digest(&files), files }
    }

    fn state(loaded: &[(&LakePartition, Option<&str>)]) -> WarehouseState {
        let mut state = WarehouseState::default();
        for (p, set) in loaded {
            let file_set = set.map(str::to_owned).unwrap_or_else(|| p.file_set.clone());
            state.partitions.insert(p.day, LoadedPartition { file_set, loaded_at: chrono::Utc::now() });
        }
        state
    }

    #[test]
    fn new_changed_unchanged_and_expired_days_are_told_apart_newest_first() {
        let a = partition("2026-11-22", &[("events/dt=2026-11-22/hour=10/x.parquet", 1)]);
        let b = partition("2026-11-23", &[("events/dt=2026-11-23/hour=11/y.parquet", 1)]);
        let c = partition("2026-11-24", &[("events/dt=2026-11-24/hour=12/z.parquet", 1)]);
        let loaded = state(&[(&b, None), (&c, Some("older"))]);
        let decided = decide(&[a.clone(), b.clone(), c.clone()], &loaded, Selection::default());
        let reasons: Vec<(NaiveDate, Reason)> = decided.iter().map(|(p, r)| (p.day, *r)).collect();
        assert_eq!(reasons, [(c.day, Reason::Changed), (b.day, Reason::UpToDate), (a.day, Reason::New)]);
        let forced = decide(
            &[a.clone(), b.clone(), c.clone()],
            &loaded,
            Selection { range: Some((b.day, b.day)), ..Default::default() },
        );
        assert_eq!(forced.iter().map(|(p, r)| (p.day, *r)).collect::<Vec<_>>(), [(b.day, Reason::Forced)]);
        let expiring = Selection { expire_before: Some(b.day), ..Default::default() };
        let reasons: Vec<Reason> = decide(&[a, b, c], &loaded, expiring).into_iter().map(|(_, r)| r).collect();
        assert_eq!(reasons, [Reason::Changed, Reason::UpToDate, Reason::Expired]);
    }

    #[test]
    fn the_digest_depends_on_names_sizes_and_versions_not_order() {
        let one = [
            ObjectMeta { path: "a".into(), size: 1, version: None },
            ObjectMeta { path: "b".into(), size: 2, version: None },
        ];
        let two = [one[1].clone(), one[0].clone()];
        assert_eq!(file_set_digest(&one), file_set_digest(&two));
        let grown = [one[0].clone(), ObjectMeta { path: "b".into(), size: 3, version: None }];
        assert_ne!(file_set_digest(&one), file_set_digest(&grown));
        // A rewrite with the same name and size is a new version of the object.
        let rewritten = [one[0].clone(), ObjectMeta { version: Some("1764000000000000001".into()), ..one[1].clone() }];
        assert_ne!(file_set_digest(&one), file_set_digest(&rewritten));
    }

    #[test]
    fn a_plan_is_cut_at_the_budget_and_counts_the_runs_the_rest_needs() {
        let days: Vec<LakePartition> = (1..=9)
            .map(|d| {
                let day = format!("2019-10-{d:02}");
                partition(
                    &day,
                    &[
                        (&format!("events/dt={day}/hour=00/a.parquet"), 10),
                        (&format!("events/dt={day}/hour=05/b.parquet"), 5),
                    ],
                )
            })
            .collect();
        let decided = decide(&days, &WarehouseState::default(), Selection::default());
        let budget = BudgetView { daily_jobs: Some(4), used_last_24h: 1, available: Some(3) };
        let plan = build("test".into(), decided, budget, |_| 1);
        assert_eq!(
            plan.jobs.iter().map(|j| j.partition.to_string()).collect::<Vec<_>>(),
            ["2019-10-09", "2019-10-08", "2019-10-07"]
        );
        assert_eq!(plan.deferred.len(), 6);
        assert_eq!(plan.this_run, Totals { jobs: 3, partitions: 3, hours: 6, files: 6, bytes: 45 });
        assert_eq!(plan.totals.jobs, 9);
        // 3 now, then 4 per refilled day: 3 runs in all.
        assert_eq!(plan.runs_needed, 3);
        assert_eq!(plan.jobs[0].hours, ["2019-10-09T00", "2019-10-09T05"]);
        assert_eq!(plan.jobs[0].changed_hours, plan.jobs[0].hours);
    }
}
