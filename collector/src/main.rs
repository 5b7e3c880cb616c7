//! `clickstream-collector`: see `--help` for every option.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cli_support::init_logging;
use collector::config::{Config, SinkKind};
use collector::enrich::TimeWindow;
use collector::state::RateLimit;
use collector::{AppState, HttpSettings, StateSettings};
use queue::EventSink;
#[cfg(feature = "gcp")]
use queue::pubsub::{PubSubConfig, PubSubSink};
use queue::spool::{SpoolSink, SpoolWriterConfig};

/// mimalloc: glibc's allocator fragments under many short-lived request allocations across
/// threads (malloc_consolidate showed in profiles); mimalloc is the usual fix.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn open_sink(config: &Config) -> anyhow::Result<Arc<dyn EventSink>> {
    Ok(match config.sink {
        SinkKind::Spool => {
            let sink = SpoolSink::open(SpoolWriterConfig {
                max_segment_bytes: config.spool_segment_bytes,
                max_segment_age: Duration::from_millis(config.spool_segment_age_ms),
                max_spool_bytes: config.spool_max_bytes,
                lock_wait: Duration::from_millis(config.spool_lock_wait_ms),
                ..SpoolWriterConfig::new(&config.spool_dir)
            })
            .map_err(|e| anyhow::anyhow!("cannot open the spool at {}: {e}", config.spool_dir.display()))?;
            tracing::info!(dir = %config.spool_dir.display(), "queuing to the local spool");
            Arc::new(sink)
        }
        #[cfg(not(feature = "gcp"))]
        SinkKind::Pubsub => anyhow::bail!(
            "sink=pubsub: this collector was built without Pub/Sub support (cargo feature `gcp`, on by \
             default); rebuild it with `--features gcp`, or use --sink spool"
        ),
        #[cfg(feature = "gcp")]
        SinkKind::Pubsub => {
            let project = config.pubsub_project.clone().unwrap_or_default();
            let mut pubsub = PubSubConfig::new(&project, &config.pubsub_topic, &config.pubsub_dead_letter_topic);
            pubsub.batch_max_messages = config.pubsub_batch_messages;
            pubsub.batch_max_bytes = config.pubsub_batch_bytes;
            pubsub.batch_max_delay = Duration::from_millis(config.pubsub_batch_delay_ms);
            pubsub.publish_timeout = Duration::from_millis(config.pubsub_publish_timeout_ms);
            tracing::info!(project, topic = %config.pubsub_topic, emulator = ?pubsub.emulator_host, "publishing to Pub/Sub");
            Arc::new(PubSubSink::connect(pubsub).await?)
        }
    })
}

async fn run(config: Config) -> anyhow::Result<()> {
    let sink = open_sink(&config).await?;
    if config.write_keys.is_empty() {
        tracing::warn!(
            key = collector::config::DEVELOPMENT_WRITE_KEY,
            "no write keys configured: accepting the development key only; set --write-key for real traffic"
        );
    }
    let settings = StateSettings {
        write_keys: config.write_key_map(),
        limits: config.limits(),
        time_window: TimeWindow {
            max_age: Duration::from_secs(config.max_event_age_hours * 3600),
            max_future: Duration::from_secs(config.max_event_future_seconds),
        },
        rate_limit: RateLimit::new(config.rate_limit_per_second, config.rate_limit_burst),
        forwarded_for_hops: config.forwarded_for_hops,
    };
    let state = AppState::new(sink.clone(), settings);
    let http = HttpSettings {
        cors_origins: config.cors_origins.clone(),
        request_timeout: config.request_timeout(),
        max_in_flight: config.max_in_flight,
    };
    let app = collector::app(state, &http);
    let address = config.listen_addr();
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}; choose another with --listen"))?;
    tracing::info!(address = %listener.local_addr()?, "collector listening");
    collector::server::serve(
        listener,
        app,
        config.server_limits(),
        Duration::from_secs(config.shutdown_grace_seconds),
        collector::server::shutdown_signal(),
    )
    .await;
    sink.shutdown().await;
    tracing::info!("collector stopped; every accepted event is in the sink");
    Ok(())
}

fn main() -> ExitCode {
    let config = cli_support::or_exit(Config::load(), "clickstream-collector");
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("clickstream-collector: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("clickstream-collector: {error:#}");
            ExitCode::FAILURE
        }
    }
}
