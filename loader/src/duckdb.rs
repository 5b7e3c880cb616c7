//! The embedded warehouse: a DuckDB file, `raw.events` plus the loader's tables
//! (`raw._partition_loads`, `raw._load_jobs`, `raw._load_runs`).
//!
//! DuckDB runs in the project venv's Python (the `duckdb` wheel dbt-duckdb uses), driven by a
//! small worker script over a pipe: one DuckDB version opens the file for both the loader and
//! dbt, and nobody compiles DuckDB's C++. Each day partition is replaced inside one transaction
//! — delete the day's rows, insert the day's files (unsorted: they are in time order already), record the load — so
//! a failure (a corrupt file, an incompatible column, the loader killed) leaves the table
//! exactly as it was. A job is recorded before its transaction, as BigQuery's are before they
//! are submitted, so the twin keeps the same budget accounting. New columns in the files are
//! added to the table; a changed type is refused with a message naming the column. A dry run
//! opens the file read-only and never creates it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::ledger::{JobRecord, Ledger, RunRecord};
use crate::{LoadOutcome, LoadedPartition, PartitionLoad, Warehouse, WarehouseError, WarehouseState};

const WORKER: &str = include_str!("duckdb_worker.py");

/// The `CREATE TABLE` of `raw.events`, generated from the contract.
pub fn create_table_sql() -> String {
    let columns: Vec<String> = event_model::schema::FIELDS
        .iter()
        .map(|f| format!("    \"{}\" {}{}", f.name, f.column_type.duckdb(), if f.nullable { "" } else { " NOT NULL" }))
        .collect();
    format!("CREATE TABLE IF NOT EXISTS raw.events (\n{}\n)", columns.join(",\n"))
}

/// A DuckDB warehouse file, with the lake it reads from on the local disk.
pub struct DuckDbWarehouse {
    path: PathBuf,
    lake_root: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl DuckDbWarehouse {
    /// Starts the worker with `python` on the database at `path`; `read_only` opens it without
    /// writing (and without creating a missing file), for dry runs. While another process holds
    /// the file's lock the worker waits up to `lock_wait` for it; after that every call fails as
    /// [`WarehouseError::Unavailable`].
    pub async fn open(
        python: &str,
        path: &Path,
        lake_root: &Path,
        read_only: bool,
        lock_wait: std::time::Duration,
    ) -> Result<Self, WarehouseError> {
        if !read_only && let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| WarehouseError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let mut command = Command::new(python);
        command.args(["-c", WORKER]).arg(path).arg(std::process::id().to_string());
        command.arg(format!("{:.3}", lock_wait.as_secs_f64()));
        command.arg(if read_only { "read-only" } else { "read-write" });
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                WarehouseError::Unavailable(format!(
                    "cannot start {python} for DuckDB: {e}; create the venv with scripts/python-env.sh or set --duckdb-python"
                ))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(WarehouseError::Unavailable("the DuckDB worker has no pipes".into()));
        };
        Ok(Self {
            path: path.to_owned(),
            lake_root: lake_root.to_owned(),
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    async fn call(&mut self, request: serde_json::Value) -> Result<serde_json::Value, WarehouseError> {
        let gone = |e: &dyn std::fmt::Display| WarehouseError::Unavailable(format!("the DuckDB worker stopped: {e}"));
        let mut line = request.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.map_err(|e| gone(&e))?;
        self.stdin.flush().await.map_err(|e| gone(&e))?;
        let mut answer = String::new();
        let read = self.stdout.read_line(&mut answer).await.map_err(|e| gone(&e))?;
        if read == 0 {
            let status = self.child.try_wait().ok().flatten();
            return Err(gone(&format!("exit status {status:?} (is duckdb installed in that Python?)")));
        }
        let answer: serde_json::Value = serde_json::from_str(&answer).map_err(|e| gone(&e))?;
        match answer.get("error").and_then(|e| e.as_str()) {
            Some(error) if answer["retryable"].as_bool() == Some(true) => {
                Err(WarehouseError::Unavailable(error.to_owned()))
            }
            Some(error) => Err(WarehouseError::Refused(error.to_owned())),
            None => Ok(answer),
        }
    }
}

fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[async_trait]
impl Warehouse for DuckDbWarehouse {
    async fn prepare(&mut self) -> Result<(), WarehouseError> {
        self.call(serde_json::json!({"op": "prepare", "create_table": create_table_sql()})).await.map(|_| ())
    }

    async fn state(&mut self) -> Result<WarehouseState, WarehouseError> {
        let answer = self.call(serde_json::json!({"op": "state"})).await?;
        let mut state =
            WarehouseState { jobs_last_24h: answer["jobs_last_24h"].as_u64().unwrap_or(0), ..Default::default() };
        if let Some(map) = answer["partitions"].as_object() {
            for (day, loaded) in map {
                let (Some(day), Some(file_set)) = (parse_day(day), loaded["file_set"].as_str()) else { continue };
                let loaded_at =
                    loaded["loaded_at_us"].as_i64().and_then(DateTime::from_timestamp_micros).unwrap_or_default();
                state.partitions.insert(day, LoadedPartition { file_set: file_set.to_owned(), loaded_at });
            }
        }
        Ok(state)
    }

    async fn loaded_files(&mut self, days: &[NaiveDate]) -> Result<HashMap<NaiveDate, Vec<String>>, WarehouseError> {
        let days: Vec<String> = days.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect();
        let answer = self.call(serde_json::json!({"op": "loaded_files", "days": days})).await?;
        let mut files = HashMap::new();
        if let Some(map) = answer["files"].as_object() {
            for (day, paths) in map {
                let Some(day) = parse_day(day) else { continue };
                let paths = paths.as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect());
                files.insert(day, paths.unwrap_or_default());
            }
        }
        Ok(files)
    }

    async fn load_partition(
        &mut self,
        load: &PartitionLoad<'_>,
        ledger: &mut Ledger,
    ) -> Result<LoadOutcome, WarehouseError> {
        let job = ledger.take(load.day)?;
        self.record_job(&job).await?;
        let paths: Vec<String> =
            load.files.iter().map(|f| self.lake_root.join(&f.path).display().to_string()).collect();
        let lake_paths: Vec<&str> = load.files.iter().map(|f| f.path.as_str()).collect();
        let answer = self
            .call(serde_json::json!({
                "op": "load_partition",
                "files": paths,
                "lake_paths": lake_paths,
                "day": load.day.format("%Y-%m-%d").to_string(),
                "file_set": load.file_set,
                "job_id": job.job_id,
                "run_id": job.run_id,
            }))
            .await?;
        Ok(LoadOutcome {
            rows: answer["rows"].as_u64().unwrap_or(0),
            added_columns: answer["added_columns"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            rows_outside: answer["rows_outside"].as_u64().unwrap_or(0),
        })
    }

    async fn record_job(&mut self, job: &JobRecord) -> Result<(), WarehouseError> {
        self.call(serde_json::json!({
            "op": "record_job",
            "job_id": job.job_id,
            "run_id": job.run_id,
            "partition_date": job.partition_date.format("%Y-%m-%d").to_string(),
            "submitted_at_us": job.submitted_at.timestamp_micros(),
        }))
        .await
        .map(|_| ())
    }

    async fn record_run(&mut self, run: &RunRecord) -> Result<(), WarehouseError> {
        let mut record = serde_json::to_value(run).map_err(|e| WarehouseError::Refused(format!("run record: {e}")))?;
        record["started_at_us"] = run.started_at.timestamp_micros().into();
        record["finished_at_us"] = run.finished_at.timestamp_micros().into();
        self.call(serde_json::json!({"op": "record_run", "run": record})).await.map(|_| ())
    }

    fn describe(&self) -> String {
        format!("duckdb {}", self.path.display())
    }
}
