//! The embedded warehouse: a DuckDB file, `raw.events` plus `raw._load_state`.
//!
//! DuckDB runs in the project venv's Python (the `duckdb` wheel dbt-duckdb uses), driven by a
//! small worker script over stdin/stdout: one DuckDB version opens the file for both the loader
//! and dbt, and nobody compiles DuckDB's C++. Each hour is replaced inside one transaction —
//! delete the hour's rows, insert the hour's files, record the file set — so a failure (a corrupt
//! file, an incompatible column) leaves the table exactly as it was. New columns in the files are
//! added to the table; a changed type is refused with a message naming the column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::{LoadOutcome, Warehouse, WarehouseError};

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
    /// Starts the worker with `python` on the database at `path`.
    pub async fn open(python: &str, path: &Path, lake_root: &Path) -> Result<Self, WarehouseError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| WarehouseError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let mut child = Command::new(python)
            .args(["-c", WORKER])
            .arg(path)
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
            Some(error) => Err(WarehouseError::Refused(error.to_owned())),
            None => Ok(answer),
        }
    }
}

#[async_trait]
impl Warehouse for DuckDbWarehouse {
    async fn prepare(&mut self) -> Result<(), WarehouseError> {
        self.call(serde_json::json!({"op": "prepare", "create_table": create_table_sql()})).await.map(|_| ())
    }

    async fn loaded(&mut self) -> Result<HashMap<DateTime<Utc>, String>, WarehouseError> {
        let answer = self.call(serde_json::json!({"op": "state"})).await?;
        let mut hours = HashMap::new();
        if let Some(map) = answer["hours"].as_object() {
            for (hour, file_set) in map {
                if let (Ok(hour), Some(file_set)) = (hour.parse::<DateTime<Utc>>(), file_set.as_str()) {
                    hours.insert(hour, file_set.to_owned());
                }
            }
        }
        Ok(hours)
    }

    async fn load_hour(
        &mut self,
        hour: DateTime<Utc>,
        files: &[batcher::lake::ObjectMeta],
        file_set: &str,
    ) -> Result<LoadOutcome, WarehouseError> {
        let paths: Vec<String> = files.iter().map(|f| self.lake_root.join(&f.path).display().to_string()).collect();
        let answer = self
            .call(serde_json::json!({
                "op": "load_hour",
                "files": paths,
                "start": hour.to_rfc3339(),
                "end": (hour + chrono::Duration::hours(1)).to_rfc3339(),
                "file_set": file_set,
            }))
            .await?;
        if let Some(outside) = answer["rows_outside_hour"].as_u64().filter(|n| *n > 0) {
            tracing::warn!(%hour, outside, "rows in the hour's files fall outside the hour and were not loaded");
        }
        Ok(LoadOutcome {
            rows: answer["rows"].as_u64().unwrap_or(0),
            added_columns: answer["added_columns"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        })
    }

    fn describe(&self) -> String {
        format!("duckdb {}", self.path.display())
    }
}
