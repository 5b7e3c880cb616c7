//! `clickstream-loader`: loads the hourly Parquet lake into the warehouse. See `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cli_support::{LogFormat, init_logging};
use loader::Warehouse;
use loader::bigquery::{BigQueryConfig, BigQueryWarehouse};
use loader::duckdb::DuckDbWarehouse;
use loader::plan::{Reason, decide, lake_hours};

/// clickstream loader: loads the lake's hours into the warehouse, replacing each hour's
/// partition, and skips hours whose files have not changed since their last load.
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
    /// Load every new or changed hour (or a forced range) into the warehouse.
    Load(LoadArgs),
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// The lake: a local directory, or gs://BUCKET[/PREFIX].
    #[arg(long, env = "CLICKSTREAM_LAKE", default_value = ".clickstream/lake")]
    lake: String,

    /// Which warehouse to fill.
    #[arg(long, env = "CLICKSTREAM_WAREHOUSE", value_enum, default_value = "duckdb")]
    warehouse: WarehouseKind,

    /// The DuckDB database file (warehouse=duckdb).
    #[arg(long, env = "CLICKSTREAM_DUCKDB_PATH", default_value = ".clickstream/warehouse.duckdb")]
    duckdb_path: PathBuf,

    /// Python with the duckdb package (the project venv's, which dbt-duckdb uses too).
    #[arg(long, env = "CLICKSTREAM_DUCKDB_PYTHON", default_value = ".venv/bin/python")]
    duckdb_python: String,

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

    /// First hour to reload, as YYYY-MM-DDTHH (with --to: reload the range whatever was loaded).
    #[arg(long, value_parser = parse_hour)]
    from: Option<DateTime<Utc>>,

    /// Last hour to reload, inclusive, as YYYY-MM-DDTHH.
    #[arg(long, value_parser = parse_hour)]
    to: Option<DateTime<Utc>>,

    /// List what would be loaded, and why, without loading.
    #[arg(long)]
    dry_run: bool,
}

fn parse_hour(text: &str) -> Result<DateTime<Utc>, String> {
    format!("{text}:00:00Z").parse().map_err(|_| format!("expected an hour like 2026-11-24T10, got {text:?}"))
}

async fn open_warehouse(args: &LoadArgs, lake: Arc<dyn batcher::lake::Lake>) -> anyhow::Result<Box<dyn Warehouse>> {
    Ok(match args.warehouse {
        WarehouseKind::Duckdb => Box::new(
            DuckDbWarehouse::open(&args.duckdb_python, &args.duckdb_path, std::path::Path::new(&args.lake)).await?,
        ),
        WarehouseKind::Bigquery => {
            let project = args.bigquery_project.clone().ok_or_else(|| {
                anyhow::anyhow!("warehouse=bigquery needs --bigquery-project (or CLICKSTREAM_BIGQUERY_PROJECT)")
            })?;
            let gcs_lake = args.lake.starts_with("gs://").then(|| format!("{}/", args.lake.trim_end_matches('/')));
            if gcs_lake.is_none() && args.bigquery_endpoint.is_none() {
                tracing::warn!("the lake is local: each hour's files are uploaded with its load job");
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
                    loader::bigquery::ReplaceStrategy::StagingTable
                } else {
                    loader::bigquery::ReplaceStrategy::PartitionDecorator
                },
            };
            Box::new(BigQueryWarehouse::connect(config, lake).await?)
        }
    })
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let range = match (args.from, args.to) {
        (Some(from), Some(to)) if from <= to => Some((from, to)),
        (Some(from), None) => Some((from, DateTime::<Utc>::MAX_UTC)),
        (None, Some(to)) => Some((DateTime::<Utc>::MIN_UTC, to)),
        (Some(_), Some(_)) => anyhow::bail!("--from is after --to"),
        (None, None) => None,
    };
    if args.warehouse == WarehouseKind::Duckdb && args.lake.starts_with("gs://") {
        anyhow::bail!("the DuckDB warehouse reads a local lake; use --warehouse bigquery for gs:// lakes");
    }
    let lake: Arc<dyn batcher::lake::Lake> = Arc::from(batcher::lake::open(&args.lake).await?);
    let hours = lake_hours(lake.as_ref()).await?;
    let mut warehouse = open_warehouse(&args, lake.clone()).await?;
    warehouse.prepare().await?;
    let loaded = warehouse.loaded().await?;
    let plan = decide(&hours, &loaded, range);
    let (mut loaded_hours, mut skipped, mut rows, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for (hour, reason) in plan {
        let size: u64 = hour.files.iter().map(|f| f.size).sum();
        let label = hour.hour.format("%Y-%m-%dT%H");
        if reason == Reason::UpToDate {
            skipped += 1;
            if args.dry_run {
                println!("skip {label}: {} files unchanged since the last load", hour.files.len());
            }
            continue;
        }
        if args.dry_run {
            println!("load {label}: {} files, {size} bytes ({reason:?})", hour.files.len());
            continue;
        }
        let outcome = warehouse
            .load_hour(hour.hour, &hour.files, &hour.file_set)
            .await
            .map_err(|e| anyhow::anyhow!("loading hour {label} into {} failed: {e}", warehouse.describe()))?;
        if !outcome.added_columns.is_empty() {
            tracing::info!(hour = %label, columns = ?outcome.added_columns, "added columns to the table");
        }
        tracing::info!(hour = %label, rows = outcome.rows, files = hour.files.len(), ?reason, "loaded");
        loaded_hours += 1;
        rows += outcome.rows;
        bytes += size;
    }
    println!(
        "loader{}: {loaded_hours} hours loaded, {skipped} skipped, {rows} rows, {bytes} bytes, {:.1} s ({})",
        if args.dry_run { " (dry run)" } else { "" },
        started.elapsed().as_secs_f64(),
        warehouse.describe()
    );
    Ok(())
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clickstream-loader: {error:#}");
            ExitCode::FAILURE
        }
    }
}
