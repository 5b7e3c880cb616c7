//! The daily job budget.
//!
//! BigQuery caps the modifications of one table per day (1,500, fixed; failed jobs count) and
//! refills that quota over a rolling 24 hours. The loader keeps its own count far enough below
//! it: every job is recorded in the loader's jobs table *before* it is submitted, so retries and
//! jobs that failed count, and a run takes a job from the [`Ledger`] only while the jobs of the
//! last 24 hours stay within the budget. When the budget is spent the run stops cleanly; what it
//! did not load is still changed in the lake, so the next run continues there.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::WarehouseError;

/// One job, as recorded before it is submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobRecord {
    /// The job's id (BigQuery's job id, or the DuckDB transaction's).
    pub job_id: String,
    /// The run that submitted it.
    pub run_id: String,
    /// The partition it replaces.
    pub partition_date: NaiveDate,
    /// When it was taken from the ledger.
    pub submitted_at: DateTime<Utc>,
}

/// What one run planned, did and left for later, recorded when it ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    /// The run's id.
    pub run_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// `complete`, `budget_exhausted`, `quota_exceeded` or `failed`.
    pub outcome: String,
    /// Partitions the plan had to load.
    pub partitions_planned: u64,
    /// Partitions loaded.
    pub partitions_loaded: u64,
    /// Partitions left for a later run.
    pub partitions_deferred: u64,
    /// Jobs submitted (retries included).
    pub jobs_submitted: u64,
    /// Why it ended, in words.
    pub message: String,
}

/// The jobs a run may still submit, and the ones it did.
#[derive(Clone, Debug)]
pub struct Ledger {
    run_id: String,
    table: String,
    daily_budget: Option<u64>,
    used_before: u64,
    issued: Vec<JobRecord>,
}

impl Ledger {
    /// A ledger for run `run_id` on `table`, with `daily_budget` jobs per 24 hours (`None`: no
    /// budget) of which `used_last_24h` are spent.
    pub fn new(run_id: &str, table: &str, daily_budget: Option<u64>, used_last_24h: u64) -> Self {
        Self {
            run_id: run_id.to_owned(),
            table: table.to_owned(),
            daily_budget,
            used_before: used_last_24h,
            issued: Vec::new(),
        }
    }

    /// Jobs that may still be submitted now (`None`: no budget).
    pub fn available(&self) -> Option<u64> {
        self.daily_budget.map(|budget| budget.saturating_sub(self.used_before + self.issued.len() as u64))
    }

    /// Takes one job for `day`, or says the budget is spent.
    pub fn take(&mut self, day: NaiveDate) -> Result<JobRecord, WarehouseError> {
        if self.available() == Some(0) {
            return Err(WarehouseError::BudgetExhausted(format!(
                "the daily job budget is spent: {} jobs on {} in the last 24 hours (budget {}, --daily-job-budget)",
                self.used_before + self.issued.len() as u64,
                self.table,
                self.daily_budget.unwrap_or_default()
            )));
        }
        let table: String =
            self.table.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        let run: String = self.run_id.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
        let job = JobRecord {
            job_id: format!("clickstream_load_{table}_{}_{run}_{}", day.format("%Y%m%d"), self.issued.len() + 1),
            run_id: self.run_id.clone(),
            partition_date: day,
            submitted_at: Utc::now(),
        };
        self.issued.push(job.clone());
        Ok(job)
    }

    /// Jobs taken so far.
    pub fn issued(&self) -> &[JobRecord] {
        &self.issued
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }
}

/// How many runs a plan of `jobs` jobs needs when this run may submit `available` and every
/// later one a full `daily_budget` (a spent budget refills within 24 hours).
pub fn runs_needed(jobs: u64, available: Option<u64>, daily_budget: Option<u64>) -> u64 {
    match (available, daily_budget) {
        _ if jobs == 0 => 0,
        (Some(available), Some(budget)) if jobs > available => 1 + (jobs - available).div_ceil(budget.max(1)),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_stops_at_the_budget_counting_the_jobs_of_the_last_day() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let mut ledger = Ledger::new("5f0c2b3e-aaaa", "events", Some(5), 3);
        assert_eq!(ledger.available(), Some(2));
        let first = ledger.take(day).unwrap();
        assert_eq!(first.job_id, "clickstream_load_events_20261124_5f0c2b3eaaaa_1");
        ledger.take(day).unwrap();
        let error = ledger.take(day).unwrap_err();
        assert!(matches!(error, WarehouseError::BudgetExhausted(_)));
        assert!(error.to_string().contains("5 jobs on events in the last 24 hours (budget 5"), "{error}");
        assert_eq!(ledger.issued().len(), 2);
        let mut unlimited = Ledger::new("r", "events", None, 10_000);
        assert!(unlimited.take(day).is_ok() && unlimited.available().is_none());
    }

    #[test]
    fn runs_needed_counts_the_refills_a_large_plan_waits_for() {
        assert_eq!(runs_needed(0, Some(10), Some(10)), 0);
        assert_eq!(runs_needed(213, Some(1000), Some(1000)), 1);
        assert_eq!(runs_needed(5000, Some(1000), Some(1000)), 5);
        assert_eq!(runs_needed(5000, Some(400), Some(1000)), 6);
        assert_eq!(runs_needed(5000, None, None), 1);
    }
}
