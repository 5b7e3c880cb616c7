//! `clickstream-loader`: loads the Parquet lake into the warehouse. See `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cli_support::{LogFormat, init_logging};
#[cfg(feature = "gcp")]
use loader::bigquery::{BigQueryConfig, BigQueryWarehouse, ReplaceStrategy};
use loader::duckdb::DuckDbWarehouse;
use loader::plan::{BudgetView, Plan, Reason, Selection, build, decide, lake_partitions, resolve};
use loader::{Ledger, PartitionLoad, RunRecord, Warehouse, WarehouseError};

/// Exit status of a run stopped by something that passes: a BigQuery quota, or a lake or
/// warehouse that stayed unavailable through every retry (EX_TEMPFAIL). The next run continues.
const EXIT_TRY_LATER: u8 = 75;

/// clickstream loader: loads the lake's days into the warehouse's DAY partitions, one job per
/// changed day, and skips days whose files have not changed since their last load.
///
/// Exit status: 0 when the run loaded what it planned or stopped at its daily job budget (the
/// next run continues); 75 when BigQuery reported a quota exceeded, or the lake or BigQuery
/// stayed unavailable through the retries (try again later); 1 for any other failure.
#[derive(Debug, Parser)]
#[command(name = "clickstream-loader", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// A TOML file of option defaults: keys are the long option names of this command and its
    /// subcommands (`warehouse = "bigquery"`). Flags and environment variables override it.
    #[arg(long, global = true, env = "CLICKSTREAM_LOADER_CONFIG")]
    config: Option<PathBuf>,

    /// Log format.
    #[arg(long, global = true, env = "CLICKSTREAM_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WarehouseKind {
    /// The embedded DuckDB file (local default).
    Duckdb,
    /// BigQuery (or an emulator with --bigquery-endpoint).
    Bigquery,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load every new or changed day (or a forced range) into the warehouse.
    Load(LoadArgs),
    /// Print the BigQuery definition of the raw events table the loader writes (schema, DAY
    /// partitioning, clustering) as JSON, e.g. to compare with Terraform or `bq show`.
    TableDefinition(TableArgs),
}

#[derive(Debug, Args)]
struct TableArgs {
    /// Project of the table.
    #[arg(long, env = "CLICKSTREAM_BIGQUERY_PROJECT", default_value = "PROJECT_ID")]
    bigquery_project: String,

    /// Dataset of the table.
    #[arg(long, env = "CLICKSTREAM_BIGQUERY_DATASET", default_value = "clickstream_raw")]
    bigquery_dataset: String,

    /// The table.
    #[arg(long, env = "CLICKSTREAM_BIGQUERY_TABLE", default_value = "events")]
    bigquery_table: String,

    /// Partition expiration in days (unset: none).
    #[arg(long, env = "CLICKSTREAM_PARTITION_EXPIRATION_DAYS")]
    partition_expiration_days: Option<u32>,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// The lake: a local directory, or gs://BUCKET[/PREFIX].
    /// Default: `lake/` in the state home (`CLICKSTREAM_HOME`; see `cli_support::paths`).
    #[arg(long, env = "CLICKSTREAM_LAKE", default_value_t = cli_support::paths::in_state_home("lake").display().to_string())]
    lake: String,

    /// Which warehouse to fill.
    #[arg(long, env = "CLICKSTREAM_WAREHOUSE", value_enum, default_value = "duckdb")]
    warehouse: WarehouseKind,

    /// The DuckDB database file (warehouse=duckdb).
    /// Default: `warehouse.duckdb` in the state home.
    #[arg(long, env = "CLICKSTREAM_DUCKDB_PATH", default_value_os_t = cli_support::paths::in_state_home("warehouse.duckdb"))]
    duckdb_path: PathBuf,

    /// Python with the duckdb package (the project venv's, which dbt-duckdb uses too).
    /// Default: `.venv/bin/python` of the checkout the loader was built in.
    #[arg(long, env = "CLICKSTREAM_DUCKDB_PYTHON")]
    duckdb_python: Option<PathBuf>,

    /// Wait up to this many seconds for the DuckDB file's lock while another process (a dbt
    /// run, another loader, a worker still exiting) holds it; then exit 75 (try later).
    #[arg(long, env = "CLICKSTREAM_DUCKDB_LOCK_WAIT_SECONDS", default_value_t = 60)]
    duckdb_lock_wait_seconds: u64,

    /// Project of the BigQuery dataset and load jobs (warehouse=bigquery).
    #[arg(long, env = "CLICKSTREAM_BIGQUERY_PROJECT")]
    bigquery_project: Option<String>,

    /// Dataset of the raw events table.
    #[arg(long, env = "CLICKSTREAM_BIGQUERY_DATASET", default_value = "clickstream_raw")]
    bigquery_dataset: String,

    /// The raw events table.
    #[arg(long, env = "CLICKSTREAM_BIGQUERY_TABLE", default_value = "events")]
    bigquery_table: String,

    /// Location of the dataset and jobs (e.g. EU, US, europe-west1).
    #[arg(long, env = "CLICKSTREAM_BIGQUERY_LOCATION")]
    bigquery_location: Option<String>,

    /// Root URL of a BigQuery emulator; load jobs then upload the files instead of reading gs://.
    #[arg(long, env = "BIGQUERY_EMULATOR_HOST")]
    bigquery_endpoint: Option<String>,

    /// Days older than this are expired in the warehouse: they are not loaded, and a table the
    /// loader creates gets this partition expiration. Unset: the BigQuery table's own
    /// expiration (which Terraform sets), or none.
    #[arg(long, env = "CLICKSTREAM_PARTITION_EXPIRATION_DAYS")]
    partition_expiration_days: Option<u32>,

    /// Load jobs allowed on the table per 24 hours, counting every job submitted (retries and
    /// failed ones too). BigQuery caps a table's modifications at 1,500 a day; the default for
    /// BigQuery, 1000, leaves room for other writers. A run stops before exceeding it and the
    /// next continues. 0 means no budget; the default for DuckDB.
    #[arg(long, env = "CLICKSTREAM_LOADER_DAILY_JOB_BUDGET")]
    daily_job_budget: Option<u64>,

    /// Attempts per day partition after a transient failure or a rate limit, each a new job.
    #[arg(long, env = "CLICKSTREAM_LOADER_JOB_RETRIES", default_value_t = 4)]
    job_retries: u32,

    /// First pause before retrying a failed job, in milliseconds; it doubles up to a minute.
    #[arg(long, env = "CLICKSTREAM_LOADER_RETRY_DELAY_MS", default_value_t = 2000)]
    retry_delay_ms: u64,

    /// How long one request to BigQuery may take before it is abandoned and retried.
    #[arg(long, env = "CLICKSTREAM_BIGQUERY_REQUEST_TIMEOUT_SECONDS", default_value_t = 120)]
    bigquery_request_timeout_seconds: u64,

    /// First day to reload, as YYYY-MM-DD or an hour YYYY-MM-DDTHH (with --to: reload the
    /// range's days whatever was loaded).
    #[arg(long, value_parser = parse_day)]
    from: Option<NaiveDate>,

    /// Last day to reload, inclusive, as YYYY-MM-DD or an hour YYYY-MM-DDTHH.
    #[arg(long, value_parser = parse_day)]
    to: Option<NaiveDate>,

    /// Print the plan as JSON (jobs, partitions, hours, files, bytes, the budget and the runs it
    /// needs) without changing the warehouse.
    #[arg(long)]
    dry_run: bool,
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    let day = text.split_once('T').map_or(text, |(day, _)| day);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| format!("expected a day like 2026-11-24 (or an hour like 2026-11-24T10), got {text:?}"))
}

// The lake is BigQuery's (uploads from a local lake), which a build without `gcp` lacks.
#[cfg_attr(not(feature = "gcp"), allow(unused_variables))]
async fn open_warehouse(args: &LoadArgs, lake: Arc<dyn batcher::lake::Lake>) -> anyhow::Result<Box<dyn Warehouse>> {
    Ok(match args.warehouse {
        WarehouseKind::Duckdb => Box::new(
            DuckDbWarehouse::open(
                &duckdb_python(args)?.display().to_string(),
                &args.duckdb_path,
                std::path::Path::new(&args.lake),
                args.dry_run,
                Duration::from_secs(args.duckdb_lock_wait_seconds),
            )
            .await?,
        ),
        #[cfg(not(feature = "gcp"))]
        WarehouseKind::Bigquery => anyhow::bail!("warehouse=bigquery: {WITHOUT_GCP}"),
        #[cfg(feature = "gcp")]
        WarehouseKind::Bigquery => {
            let project = args.bigquery_project.clone().ok_or_else(|| {
                anyhow::anyhow!("warehouse=bigquery needs --bigquery-project (or CLICKSTREAM_BIGQUERY_PROJECT)")
            })?;
            let gcs_lake = args.lake.starts_with("gs://").then(|| format!("{}/", args.lake.trim_end_matches('/')));
            if gcs_lake.is_none() && args.bigquery_endpoint.is_none() {
                tracing::warn!("the lake is local: each day's files are uploaded, one load job per file");
            }
            let config = BigQueryConfig {
                project,
                dataset: args.bigquery_dataset.clone(),
                table: args.bigquery_table.clone(),
                location: args.bigquery_location.clone(),
                endpoint: args.bigquery_endpoint.clone(),
                gcs_lake: if args.bigquery_endpoint.is_some() { None } else { gcs_lake },
                // Emulators reject partition decorators (see loader::bigquery).
                replace: if args.bigquery_endpoint.is_some() {
                    ReplaceStrategy::StagingTable
                } else {
                    ReplaceStrategy::PartitionDecorator
                },
                partition_expiration_days: args.partition_expiration_days,
                request_timeout: Duration::from_secs(args.bigquery_request_timeout_seconds.max(1)),
            };
            Box::new(BigQueryWarehouse::connect(config, lake).await?)
        }
    })
}

/// What a build without the cloud back-ends answers when asked for one.
#[cfg(not(feature = "gcp"))]
const WITHOUT_GCP: &str = "this loader was built without BigQuery support (cargo feature `gcp`, on by default); \
                           rebuild it with `--features gcp`, or use --warehouse duckdb";

/// The Python the DuckDB worker runs in: `--duckdb-python`, else the checkout's project venv.
fn duckdb_python(args: &LoadArgs) -> anyhow::Result<PathBuf> {
    args.duckdb_python.clone().or_else(cli_support::paths::project_python).ok_or_else(|| {
        anyhow::anyhow!(
            "no Python with DuckDB for the embedded warehouse: set --duckdb-python or CLICKSTREAM_DUCKDB_PYTHON to a \
             Python that has the duckdb package (from a checkout, `bash scripts/python-env.sh` makes its .venv, \
             which the loader then finds by itself)"
        )
    })
}

/// How a run ended.
struct RunEnd {
    outcome: &'static str,
    message: String,
    exit: ExitCode,
}

async fn load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let started_at = Utc::now();
    let run_id = uuid::Uuid::new_v4().to_string();
    let range = match (args.from, args.to) {
        (Some(from), Some(to)) if from <= to => Some((from, to)),
        (Some(from), None) => Some((from, NaiveDate::MAX)),
        (None, Some(to)) => Some((NaiveDate::MIN, to)),
        (Some(_), Some(_)) => anyhow::bail!("--from is after --to"),
        (None, None) => None,
    };
    if args.warehouse == WarehouseKind::Duckdb && args.lake.starts_with("gs://") {
        anyhow::bail!("the DuckDB warehouse reads a local lake; use --warehouse bigquery for gs:// lakes");
    }
    let daily_budget = match (args.daily_job_budget, args.warehouse) {
        (Some(0), _) | (None, WarehouseKind::Duckdb) => None,
        (Some(budget), _) => Some(budget),
        (None, WarehouseKind::Bigquery) => Some(1000),
    };
    let lake: Arc<dyn batcher::lake::Lake> = Arc::from(batcher::lake::open(&args.lake).await?);
    let partitions = lake_partitions(lake.as_ref()).await?;
    let mut warehouse = open_warehouse(&args, lake.clone()).await?;
    if !args.dry_run {
        warehouse.prepare().await?;
    }
    let state = warehouse.state().await?;
    let selection = Selection {
        range,
        expire_before: args
            .partition_expiration_days
            .map(|days| Utc::now().date_naive() - chrono::Days::new(days.into())),
    };
    let decided = decide(&partitions, &state, selection);
    let budget = BudgetView {
        daily_jobs: daily_budget,
        used_last_24h: state.jobs_last_24h,
        available: daily_budget.map(|budget| budget.saturating_sub(state.jobs_last_24h)),
    };
    let mut plan = build(warehouse.describe(), decided, budget, |files| warehouse.jobs_per_partition(files));
    let changed: Vec<NaiveDate> =
        plan.jobs.iter().chain(&plan.deferred).filter(|j| j.reason == Reason::Changed).map(|j| j.partition).collect();
    let loaded_files = warehouse.loaded_files(&changed).await?;
    resolve(&mut plan, lake.as_ref(), &loaded_files).await?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    let table = match args.warehouse {
        WarehouseKind::Duckdb => "raw.events".to_owned(),
        WarehouseKind::Bigquery => args.bigquery_table.clone(),
    };
    let mut ledger = Ledger::new(&run_id, &table, daily_budget, state.jobs_last_24h);
    let (loaded, rows, bytes, end) = run_plan(&plan, warehouse.as_mut(), &mut ledger, &args).await;
    let deferred = (plan.jobs.len() + plan.deferred.len()) as u64 - loaded;
    let record = RunRecord {
        run_id: run_id.clone(),
        started_at,
        finished_at: Utc::now(),
        outcome: end.outcome.to_owned(),
        partitions_planned: (plan.jobs.len() + plan.deferred.len()) as u64,
        partitions_loaded: loaded,
        partitions_deferred: deferred,
        jobs_submitted: ledger.issued().len() as u64,
        message: end.message.clone(),
    };
    if let Err(error) = warehouse.record_run(&record).await {
        tracing::warn!(%error, "could not record the run");
    }
    println!(
        "loader: {loaded} partitions loaded, {} skipped, {deferred} deferred, {rows} rows, {bytes} bytes, {} jobs, {:.1} s ({})",
        plan.up_to_date,
        ledger.issued().len(),
        started.elapsed().as_secs_f64(),
        warehouse.describe()
    );
    if !end.message.is_empty() {
        eprintln!("clickstream-loader: {}", end.message);
    }
    Ok(end.exit)
}

/// Loads the plan's jobs in order; returns partitions loaded, rows, bytes and how it ended.
async fn run_plan(
    plan: &Plan,
    warehouse: &mut dyn Warehouse,
    ledger: &mut Ledger,
    args: &LoadArgs,
) -> (u64, u64, u64, RunEnd) {
    let (mut loaded, mut rows, mut bytes) = (0u64, 0u64, 0u64);
    let total = (plan.jobs.len() + plan.deferred.len()) as u64;
    let later = |loaded: u64| {
        format!(
            "{} of {total} changed partitions are left for the next run, which continues where this one stopped",
            total - loaded
        )
    };
    for job in &plan.jobs {
        let load = PartitionLoad { day: job.partition, files: &job.objects, file_set: &job.file_set };
        let label = job.partition.format("%Y-%m-%d");
        let mut pauses = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(args.retry_delay_ms))
            .with_max_delay(Duration::from_secs(60))
            .with_max_times(args.job_retries as usize)
            .with_jitter()
            .build();
        let outcome = loop {
            match warehouse.load_partition(&load, ledger).await {
                Err(error) if error.is_retryable() => match pauses.next() {
                    Some(pause) => {
                        tracing::warn!(partition = %label, %error, ?pause, "load failed; retrying with a new job");
                        tokio::time::sleep(pause).await;
                    }
                    None => break Err(error),
                },
                other => break other,
            }
        };
        match outcome {
            Ok(outcome) => {
                if !outcome.added_columns.is_empty() {
                    tracing::info!(partition = %label, columns = ?outcome.added_columns, "added columns to the table");
                }
                if outcome.rows_outside > 0 {
                    tracing::warn!(partition = %label, rows = outcome.rows_outside, "rows in the day's files fall outside the day and were not loaded");
                }
                tracing::info!(partition = %label, rows = outcome.rows, files = job.files, hours = job.changed_hours.len(), reason = ?job.reason, "loaded");
                loaded += 1;
                rows += outcome.rows;
                bytes += job.bytes;
            }
            Err(WarehouseError::BudgetExhausted(message)) => {
                let message = format!("stopped at the daily job budget: {message}; {}", later(loaded));
                return (loaded, rows, bytes, RunEnd { outcome: "budget_exhausted", message, exit: ExitCode::SUCCESS });
            }
            Err(error @ WarehouseError::QuotaExceeded(_)) => {
                let message = format!(
                    "stopped loading {label} into {}: BigQuery reports {error}. Every partition loaded before is kept; {}",
                    warehouse.describe(),
                    later(loaded)
                );
                return (
                    loaded,
                    rows,
                    bytes,
                    RunEnd { outcome: "quota_exceeded", message, exit: EXIT_TRY_LATER.into() },
                );
            }
            Err(error) => {
                let exit = if error.is_retryable() { EXIT_TRY_LATER.into() } else { ExitCode::FAILURE };
                let message = format!(
                    "loading {label} into {} failed: {error}; the partition is as it was before, {}",
                    warehouse.describe(),
                    later(loaded)
                );
                return (loaded, rows, bytes, RunEnd { outcome: "failed", message, exit });
            }
        }
    }
    let end = if plan.deferred.is_empty() {
        RunEnd { outcome: "complete", message: String::new(), exit: ExitCode::SUCCESS }
    } else {
        let message = format!(
            "the daily job budget ({} jobs, {} used in the last 24 hours) let this run load {loaded} partitions; {}",
            plan.budget.daily_jobs.unwrap_or_default(),
            plan.budget.used_last_24h,
            later(loaded)
        );
        RunEnd { outcome: "budget_exhausted", message, exit: ExitCode::SUCCESS }
    };
    (loaded, rows, bytes, end)
}

fn main() -> ExitCode {
    let cli: Cli = cli_support::or_exit(cli_support::parse(std::env::args_os()), "clickstream-loader");
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("clickstream-loader: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Load(args) => runtime.block_on(load(args)),
        #[cfg(not(feature = "gcp"))]
        Command::TableDefinition(_) => Err(anyhow::anyhow!("table-definition: {WITHOUT_GCP}")),
        #[cfg(feature = "gcp")]
        Command::TableDefinition(args) => {
            let config = BigQueryConfig {
                project: args.bigquery_project,
                dataset: args.bigquery_dataset,
                table: args.bigquery_table,
                location: None,
                endpoint: None,
                gcs_lake: None,
                replace: ReplaceStrategy::PartitionDecorator,
                partition_expiration_days: args.partition_expiration_days,
                request_timeout: Duration::from_secs(60),
            };
            serde_json::to_string_pretty(&loader::bigquery::table_definition(&config))
                .map(|json| {
                    println!("{json}");
                    ExitCode::SUCCESS
                })
                .map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("clickstream-loader: {error:#}");
            exit_code(&error)
        }
    }
}

/// 75 (try later) when what failed may pass — the lake or BigQuery unavailable, a quota — else 1.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    let passes = error.chain().any(|cause| {
        cause.downcast_ref::<batcher::lake::LakeError>().is_some_and(batcher::lake::LakeError::is_retryable)
            || cause
                .downcast_ref::<WarehouseError>()
                .is_some_and(|e| e.is_retryable() || matches!(e, WarehouseError::QuotaExceeded(_)))
    });
    if passes { EXIT_TRY_LATER.into() } else { ExitCode::FAILURE }
}
