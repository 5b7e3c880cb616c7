//! `clickstream-batcher`: queue → hourly Parquet lake, compaction and CSV backfill. See `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use batcher::compact::{CompactSettings, DayCompaction};
use batcher::lake;
use batcher::parquet_io::ParquetSettings;
#[cfg(feature = "gcp")]
use batcher::pubsub_source::{self, PubSubSourceConfig};
use batcher::spool_source::{self, RunBounds};
use batcher::writer::{LakeWriter, Summary};
use clap::{Args, Parser, Subcommand, ValueEnum};
use cli_support::{LogFormat, init_logging};
#[cfg(feature = "gcp")]
use queue::pubsub::{PubSubConfig, PubSubSink};

/// clickstream batcher: drains the event queue into an hourly Parquet lake
/// (events/dt=YYYY-MM-DD/hour=HH/*.parquet), compacts closed hours, and backfills CSV exports.
#[derive(Debug, Parser)]
#[command(name = "clickstream-batcher", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// A TOML file of option defaults: keys are the long option names of this command and its
    /// subcommands (`flush-events = 50000`). Flags and environment variables override it.
    #[arg(long, global = true, env = "CLICKSTREAM_BATCHER_CONFIG")]
    config: Option<PathBuf>,

    /// The lake: a local directory, or gs://BUCKET[/PREFIX] (honours STORAGE_EMULATOR_HOST).
    /// Default: `lake/` in the state home (`CLICKSTREAM_HOME`; see `cli_support::paths`).
    #[arg(long, global = true, env = "CLICKSTREAM_LAKE", default_value_t = cli_support::paths::in_state_home("lake").display().to_string())]
    lake: String,

    /// zstd level of the Parquet files (1 to 22). Level 3 makes files about 2% smaller than 1 and
    /// writes them about 8% slower (bench/RESULTS.md).
    #[arg(long, global = true, env = "CLICKSTREAM_PARQUET_ZSTD_LEVEL", default_value_t = ParquetSettings::default().zstd_level)]
    zstd_level: i32,

    /// Most rows per Parquet row group. The writer holds an open row group in memory (about 1 KB
    /// per event), per hour being written.
    #[arg(long, global = true, env = "CLICKSTREAM_PARQUET_ROW_GROUP_ROWS", default_value_t = ParquetSettings::default().row_group_rows)]
    row_group_rows: usize,

    /// Serve Prometheus metrics on this address while running (e.g. 127.0.0.1:9102).
    #[arg(long, global = true, env = "CLICKSTREAM_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,

    /// Log format.
    #[arg(long, global = true, env = "CLICKSTREAM_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Source {
    /// The local spool written by the collector (embedded default).
    Spool,
    /// A Pub/Sub subscription (or the emulator when PUBSUB_EMULATOR_HOST is set).
    Pubsub,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drain the queue into the lake, then exit (a batch job), or keep following with --follow.
    Run(RunArgs),
    /// Merge the small files of closed days into one file per day (one per hour for busy days), with a manifest.
    Compact(CompactArgs),
    /// Import REES46 "eCommerce behavior data from multi category store" CSV exports.
    Backfill(BackfillArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Where events come from.
    #[arg(long, env = "CLICKSTREAM_BATCHER_SOURCE", value_enum, default_value = "spool")]
    source: Source,

    /// Spool root directory (source=spool).
    /// Default: `spool/` in the state home.
    #[arg(long, env = "CLICKSTREAM_SPOOL_DIR", default_value_os_t = cli_support::paths::in_state_home("spool"))]
    spool_dir: PathBuf,

    /// Google Cloud project of the subscription (source=pubsub).
    #[arg(long, env = "CLICKSTREAM_PUBSUB_PROJECT")]
    pubsub_project: Option<String>,

    /// Subscription to drain (source=pubsub).
    #[arg(long, env = "CLICKSTREAM_PUBSUB_SUBSCRIPTION", default_value = "clickstream-events-batcher")]
    pubsub_subscription: String,

    /// Topic for messages that cannot be decoded (source=pubsub); they are published there
    /// before being acked.
    #[arg(long, env = "CLICKSTREAM_PUBSUB_DEAD_LETTER_TOPIC", default_value = "clickstream-events-dead-letter")]
    pubsub_dead_letter_topic: String,

    /// Flush a Pub/Sub batch at this many events (also the outstanding-message limit).
    #[arg(long, env = "CLICKSTREAM_FLUSH_EVENTS", default_value_t = 200_000)]
    flush_events: usize,

    /// Flush a Pub/Sub batch at this many bytes (also the outstanding-bytes limit; memory stays
    /// within about twice this).
    #[arg(long, env = "CLICKSTREAM_FLUSH_BYTES", default_value_t = 128 * 1024 * 1024)]
    flush_bytes: usize,

    /// Flush a Pub/Sub batch at the latest this many seconds after its first message.
    #[arg(long, env = "CLICKSTREAM_FLUSH_AGE_SECONDS", default_value_t = 120)]
    flush_age_seconds: u64,

    /// Ack deadline of the messages held (source=pubsub), renewed while they are: a batcher that
    /// dies holding messages has them redelivered after at most this long (10 to 600).
    #[arg(long, env = "CLICKSTREAM_PUBSUB_LEASE_EXTENSION_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(10..=600))]
    lease_extension_seconds: u64,

    /// Stop taking new work after this many seconds (job mode), flushing what is held.
    #[arg(long, env = "CLICKSTREAM_MAX_RUNTIME_SECONDS")]
    max_runtime_seconds: Option<u64>,

    /// Exit after this many seconds without new messages or segments.
    #[arg(long, env = "CLICKSTREAM_IDLE_EXIT_SECONDS")]
    idle_exit_seconds: Option<u64>,

    /// Keep running and pick up new events as they arrive (the local demo's service mode).
    #[arg(long)]
    follow: bool,

    /// Spool segments encoded at once (source=spool), each on its own thread and holding its
    /// records in memory while it is; default: one per CPU, at most 4.
    #[arg(long, env = "CLICKSTREAM_SPOOL_PARALLEL_SEGMENTS", value_parser = clap::value_parser!(u64).range(1..=64))]
    spool_parallel_segments: Option<u64>,
}

#[derive(Debug, Args)]
struct CompactArgs {
    /// An hour to compact, as YYYY-MM-DDTHH (repeatable).
    #[arg(long = "hour", value_parser = parse_hour)]
    hours: Vec<chrono::DateTime<chrono::Utc>>,

    /// A day to compact, as YYYY-MM-DD (repeatable): into one file when it is small enough,
    /// else hour by hour. Without any --hour or --day: every day that closed at least
    /// --closed-before-hours ago, and the closed hours of the days still open.
    #[arg(long = "day", value_parser = parse_day)]
    days: Vec<chrono::NaiveDate>,

    /// Compact hours and days that closed at least this many hours ago.
    #[arg(long, env = "CLICKSTREAM_COMPACT_CLOSED_BEFORE_HOURS", default_value_t = 1)]
    closed_before_hours: i64,

    /// A closed day whose files add up to at most this many bytes becomes one file (sparse
    /// traffic: one file per day); a larger day keeps one file per hour. 0 keeps hour files.
    /// The merge holds the day in memory: a few times this size.
    #[arg(long, env = "CLICKSTREAM_COMPACT_DAY_FILE_MAX_BYTES", default_value_t = CompactSettings::default().day_file_max_bytes)]
    day_file_max_bytes: u64,
}

#[derive(Debug, Args)]
struct BackfillArgs {
    /// A REES46 CSV file (repeatable).
    #[arg(long = "csv", required = true)]
    csv: Vec<PathBuf>,

    /// The source id stored on imported events.
    #[arg(long, default_value = "rees46-backfill")]
    source_id: String,

    /// Rows held in memory and written per output file.
    #[arg(long, default_value_t = 500_000)]
    chunk_rows: usize,
}

fn parse_day(text: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("expected a day like 2026-11-24, got {text:?}"))
}

fn parse_hour(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    format!("{text}:00:00Z").parse().map_err(|_| format!("expected an hour like 2026-11-24T10, got {text:?}"))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(address) = cli.metrics_listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(address)
            .install()
            .map_err(|e| anyhow::anyhow!("cannot serve metrics on {address}: {e}"))?;
    }
    let started = Instant::now();
    let lake: Arc<dyn lake::Lake> = Arc::from(lake::open(&cli.lake).await?);
    let settings = ParquetSettings { zstd_level: cli.zstd_level, row_group_rows: cli.row_group_rows.max(1) };
    let writer = LakeWriter::new(lake.clone(), settings);
    match cli.command {
        Command::Run(args) => {
            let bounds = RunBounds {
                follow: args.follow,
                idle_exit: args.idle_exit_seconds.map(Duration::from_secs),
                max_runtime: args.max_runtime_seconds.map(Duration::from_secs),
                ..RunBounds::default()
            };
            let bounds = match args.spool_parallel_segments {
                Some(parallel) => RunBounds { parallel_segments: parallel as usize, ..bounds },
                None => bounds,
            };
            let summary = match args.source {
                Source::Spool => {
                    tracing::info!(spool = %args.spool_dir.display(), lake = %lake.describe(), "draining the spool");
                    spool_source::drain(&args.spool_dir, &writer, bounds).await?
                }
                #[cfg(not(feature = "gcp"))]
                Source::Pubsub => anyhow::bail!(
                    "source=pubsub: this batcher was built without Pub/Sub support (cargo feature `gcp`, on by \
                     default); rebuild it with `--features gcp`"
                ),
                #[cfg(feature = "gcp")]
                Source::Pubsub => {
                    let project = args.pubsub_project.clone().ok_or_else(|| {
                        anyhow::anyhow!("source=pubsub needs --pubsub-project (or CLICKSTREAM_PUBSUB_PROJECT)")
                    })?;
                    let pubsub =
                        PubSubConfig::new(&project, &args.pubsub_dead_letter_topic, &args.pubsub_dead_letter_topic);
                    let dead_letters = PubSubSink::connect(pubsub.clone()).await?;
                    let writer = writer.with_dead_letter_sink(Arc::new(dead_letters));
                    let config = PubSubSourceConfig {
                        pubsub,
                        subscription: args.pubsub_subscription.clone(),
                        flush_events: args.flush_events.max(1),
                        flush_bytes: args.flush_bytes.max(1),
                        flush_age: Duration::from_secs(args.flush_age_seconds.max(1)),
                        max_lease: Duration::from_secs(args.flush_age_seconds.max(1) * 2 + 60),
                        lease_extension: Duration::from_secs(args.lease_extension_seconds),
                    };
                    tracing::info!(subscription = %config.subscription, lake = %lake.describe(), "draining Pub/Sub");
                    pubsub_source::drain(&config, &writer, bounds).await?
                }
            };
            println!("{}", summary.line("batcher run", started));
        }
        Command::Compact(args) => {
            let closed_for = chrono::Duration::hours(args.closed_before_hours);
            let (days, hours) = if args.hours.is_empty() && args.days.is_empty() {
                batcher::compact::closed_work(lake.as_ref(), closed_for).await?
            } else {
                (args.days.clone(), args.hours.clone())
            };
            let compact = CompactSettings { parquet: settings, day_file_max_bytes: args.day_file_max_bytes };
            let bar = indicatif::ProgressBar::new((days.len() + hours.len()) as u64);
            let mut summary = Summary::default();
            let (mut hours_compacted, mut days_compacted) = (0, 0);
            let count = |manifest: &batcher::compact::Manifest, summary: &mut Summary| {
                summary.events += manifest.rows;
                summary.bytes += manifest.bytes;
                summary.files += 1;
                summary.duplicates += manifest.duplicates_removed;
            };
            for day in days {
                bar.set_message(day.format("%Y-%m-%d").to_string());
                match batcher::compact::compact_day(lake.as_ref(), day, compact).await? {
                    DayCompaction::Nothing => {}
                    DayCompaction::Day(manifest) => {
                        days_compacted += 1;
                        count(&manifest, &mut summary);
                    }
                    DayCompaction::Hours(manifests) => {
                        hours_compacted += manifests.len();
                        manifests.iter().for_each(|m| count(m, &mut summary));
                    }
                }
                bar.inc(1);
            }
            for hour in hours {
                bar.set_message(hour.format("%Y-%m-%dT%H").to_string());
                if let Some(manifest) = batcher::compact::compact_hour(lake.as_ref(), hour, settings).await? {
                    hours_compacted += 1;
                    count(&manifest, &mut summary);
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            println!(
                "{} ({days_compacted} days and {hours_compacted} hours compacted)",
                summary.line("batcher compact", started)
            );
        }
        Command::Backfill(args) => {
            let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let summary =
                batcher::backfill::run(&args.csv, &args.source_id, &writer, args.chunk_rows.max(1), progress).await?;
            println!("{}", summary.line("batcher backfill", started));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli: Cli = cli_support::or_exit(cli_support::parse(std::env::args_os()), "clickstream-batcher");
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("clickstream-batcher: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let kind = error_kind(&error);
            eprintln!("clickstream-batcher: {error:#} ({kind})");
            match kind {
                lake::ErrorKind::Transient => ExitCode::from(EXIT_TRY_AGAIN),
                lake::ErrorKind::NotFound | lake::ErrorKind::Permanent => ExitCode::FAILURE,
            }
        }
    }
}

/// The exit status of a run that failed transiently (a timeout, an unavailable store or queue):
/// `EX_TEMPFAIL` of sysexits.h, "try again later". A scheduler may re-run the job; nothing was
/// acknowledged that was not durable.
const EXIT_TRY_AGAIN: u8 = 75;

/// The kind of the first error in the chain that has one; permanent when none does.
fn error_kind(error: &anyhow::Error) -> lake::ErrorKind {
    for cause in error.chain() {
        #[cfg(feature = "gcp")]
        if let Some(error) = cause.downcast_ref::<pubsub_source::PubSubDrainError>() {
            return error.kind();
        }
        let kind = if let Some(error) = cause.downcast_ref::<lake::LakeError>() {
            error.kind()
        } else if let Some(error) = cause.downcast_ref::<batcher::writer::WriteError>() {
            error.kind()
        } else if let Some(error) = cause.downcast_ref::<spool_source::DrainError>() {
            error.kind()
        } else if let Some(error) = cause.downcast_ref::<batcher::compact::CompactError>() {
            match error {
                batcher::compact::CompactError::Lake(error) => error.kind(),
                _ => lake::ErrorKind::Permanent,
            }
        } else if let Some(error) = cause.downcast_ref::<queue::SinkError>() {
            if error.is_retryable() { lake::ErrorKind::Transient } else { lake::ErrorKind::Permanent }
        } else {
            continue;
        };
        return kind;
    }
    lake::ErrorKind::Permanent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed_out() -> lake::LakeError {
        lake::LakeError::TimedOut {
            operation: lake::Operation::Put,
            location: "gs://lake/events/a.parquet".into(),
            after: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_transient_failure_anywhere_in_the_chain_exits_with_try_again() {
        let drain = spool_source::DrainError::from(timed_out());
        let error = anyhow::Error::from(drain).context("draining the spool");
        assert_eq!(error_kind(&error), lake::ErrorKind::Transient);
        let compact = batcher::compact::CompactError::Lake(timed_out());
        assert_eq!(error_kind(&anyhow::Error::from(compact)), lake::ErrorKind::Transient);
    }

    #[test]
    fn a_permanent_or_unknown_failure_exits_with_failure() {
        let forbidden = lake::LakeError::Status {
            operation: lake::Operation::Get,
            location: "gs://lake/x".into(),
            status: 403,
            kind: lake::ErrorKind::Permanent,
            source: lake::ServiceAnswer::parse(403, b"{}").into(),
        };
        assert_eq!(error_kind(&anyhow::Error::from(forbidden)), lake::ErrorKind::Permanent);
        assert_eq!(error_kind(&anyhow::anyhow!("a bad flag")), lake::ErrorKind::Permanent);
    }
}
