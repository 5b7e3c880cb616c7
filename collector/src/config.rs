//! The collector's configuration: one typed struct, read from flags, environment variables and
//! an optional TOML file, every option documented in `--help`.
//!
//! Precedence, highest first: command-line flag, environment variable, config file
//! (`--config`/`CLICKSTREAM_CONFIG`), built-in default. Config-file keys are the long flag names
//! (`max-batch-events = 200` or `max_batch_events = 200`); lists are TOML arrays. With no
//! configuration at all the collector runs the embedded default: a local spool in `spool/` of the
//! state home (`cli_support::paths`: `CLICKSTREAM_HOME`, else the checkout's `.clickstream/`) and
//! a development write key.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
pub use cli_support::{ConfigError, LogFormat};

/// Where accepted events go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    /// The local, durable on-disk spool (embedded default).
    Spool,
    /// Google Cloud Pub/Sub (or its emulator when PUBSUB_EMULATOR_HOST is set).
    Pubsub,
}

/// The smallest `--max-header-bytes` hyper's HTTP/1.1 reader works with.
pub const MIN_HEADER_BYTES: usize = 8192;

/// The write key every embedded-default collector accepts when no key is configured.
pub const DEVELOPMENT_WRITE_KEY: &str = "dev-write-key";
/// The source the development write key maps to.
pub const DEVELOPMENT_SOURCE: &str = "development";

/// clickstream collector: validates, enriches and durably queues e-commerce tracking events.
#[derive(Clone, Debug, Parser)]
#[command(name = "clickstream-collector", version, about, long_about = None)]
pub struct Config {
    /// TOML file with defaults for any of these options (keys are the long option names).
    #[arg(long, env = "CLICKSTREAM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "CLICKSTREAM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Port to listen on, on all interfaces; overrides --listen (Cloud Run sets PORT).
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,

    /// Where accepted events are queued.
    #[arg(long, env = "CLICKSTREAM_SINK", value_enum, default_value = "spool")]
    pub sink: SinkKind,

    /// Spool root directory (sink=spool); streams `events/` and `failed/` live inside.
    /// Default: `spool/` in the state home (`CLICKSTREAM_HOME`; see `cli_support::paths`).
    #[arg(long, env = "CLICKSTREAM_SPOOL_DIR", default_value_os_t = cli_support::paths::in_state_home("spool"))]
    pub spool_dir: PathBuf,

    /// Seal a spool segment once it holds this many bytes.
    #[arg(long, env = "CLICKSTREAM_SPOOL_SEGMENT_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub spool_segment_bytes: u64,

    /// Seal a non-empty spool segment this many milliseconds after its first event, so the
    /// batcher sees fresh events soon.
    #[arg(long, env = "CLICKSTREAM_SPOOL_SEGMENT_AGE_MS", default_value_t = 5_000)]
    pub spool_segment_age_ms: u64,

    /// Answer 503 while unconsumed spool segments exceed this many bytes (0: no cap).
    #[arg(long, env = "CLICKSTREAM_SPOOL_MAX_BYTES", default_value_t = 8 * 1024 * 1024 * 1024)]
    pub spool_max_bytes: u64,

    /// At start-up, wait this many milliseconds for the spool's lock while a batcher holds it
    /// to seal what a crashed collector left open; a lock held longer belongs to another
    /// collector on the same directory, and start-up fails.
    #[arg(long, env = "CLICKSTREAM_SPOOL_LOCK_WAIT_MS", default_value_t = 10_000)]
    pub spool_lock_wait_ms: u64,

    /// Google Cloud project of the Pub/Sub topics (sink=pubsub).
    #[arg(long, env = "CLICKSTREAM_PUBSUB_PROJECT")]
    pub pubsub_project: Option<String>,

    /// Topic for accepted events.
    #[arg(long, env = "CLICKSTREAM_PUBSUB_TOPIC", default_value = "clickstream-events")]
    pub pubsub_topic: String,

    /// Topic for rejected events (also the subscription's dead-letter topic).
    #[arg(long, env = "CLICKSTREAM_PUBSUB_DEAD_LETTER_TOPIC", default_value = "clickstream-events-dead-letter")]
    pub pubsub_dead_letter_topic: String,

    /// Send a Pub/Sub batch once it holds this many messages.
    #[arg(long, env = "CLICKSTREAM_PUBSUB_BATCH_MESSAGES", default_value_t = 500)]
    pub pubsub_batch_messages: u32,

    /// Send a Pub/Sub batch once it holds this many bytes.
    #[arg(long, env = "CLICKSTREAM_PUBSUB_BATCH_BYTES", default_value_t = 1024 * 1024)]
    pub pubsub_batch_bytes: u32,

    /// Send a Pub/Sub batch at the latest this many milliseconds after its first message.
    #[arg(long, env = "CLICKSTREAM_PUBSUB_BATCH_DELAY_MS", default_value_t = 5)]
    pub pubsub_batch_delay_ms: u64,

    /// Answer 503 when Pub/Sub has not acknowledged a publish within this many milliseconds.
    #[arg(long, env = "CLICKSTREAM_PUBSUB_PUBLISH_TIMEOUT_MS", default_value_t = 10_000)]
    pub pubsub_publish_timeout_ms: u64,

    /// A write key and the source it belongs to, as KEY=SOURCE; repeat the flag, or separate
    /// with commas in the variable. Without any, the spool sink accepts the development key
    /// `dev-write-key` (source `development`) and the Pub/Sub sink refuses to start.
    #[arg(long = "write-key", env = "CLICKSTREAM_WRITE_KEYS", value_delimiter = ',', value_parser = parse_write_key, value_name = "KEY=SOURCE")]
    pub write_keys: Vec<(String, String)>,

    /// Browser origin allowed to send events (CORS), e.g. https://shop.example; repeat or
    /// separate with commas; `*` allows any origin.
    #[arg(long = "cors-origin", env = "CLICKSTREAM_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Events per second each write key may send (0: unlimited); over it the answer is 429.
    #[arg(long, env = "CLICKSTREAM_RATE_LIMIT_PER_SECOND", default_value_t = 10_000)]
    pub rate_limit_per_second: u32,

    /// Events a write key may send in one burst above its rate.
    #[arg(long, env = "CLICKSTREAM_RATE_LIMIT_BURST", default_value_t = 20_000)]
    pub rate_limit_burst: u32,

    /// Most events in one batch.
    #[arg(long, env = "CLICKSTREAM_MAX_BATCH_EVENTS", default_value_t = 500)]
    pub max_batch_events: usize,

    /// Most bytes of a request body, after gzip decompression.
    #[arg(long, env = "CLICKSTREAM_MAX_BATCH_BYTES", default_value_t = 500 * 1024)]
    pub max_batch_bytes: usize,

    /// Most bytes of one event.
    #[arg(long, env = "CLICKSTREAM_MAX_EVENT_BYTES", default_value_t = 32 * 1024)]
    pub max_event_bytes: usize,

    /// Accept client event times at most this many hours before receipt; older claims are kept
    /// in client_event_time, flagged, and event_time is set to the receive time.
    #[arg(long, env = "CLICKSTREAM_MAX_EVENT_AGE_HOURS", default_value_t = 24 * 7)]
    pub max_event_age_hours: u64,

    /// Accept client event times at most this many seconds after receipt (clock drift).
    #[arg(long, env = "CLICKSTREAM_MAX_EVENT_FUTURE_SECONDS", default_value_t = 600)]
    pub max_event_future_seconds: u64,

    /// Proxies in front of the collector that append to X-Forwarded-For (Cloud Run: 1). The
    /// client IP is the entry this many hops from the right; 0 uses the socket's peer address.
    #[arg(long, env = "CLICKSTREAM_FORWARDED_FOR_HOPS", default_value_t = 0)]
    pub forwarded_for_hops: usize,

    /// Whole-request deadline in milliseconds (body included); slower requests get 408 and
    /// their connection is closed.
    #[arg(long, env = "CLICKSTREAM_REQUEST_TIMEOUT_MS", default_value_t = 15_000)]
    pub request_timeout_ms: u64,

    /// Close connections whose request headers take longer than this many milliseconds, and
    /// idle keep-alive connections after as long without a new request.
    #[arg(long, env = "CLICKSTREAM_HEADER_TIMEOUT_MS", default_value_t = 5_000)]
    pub header_timeout_ms: u64,

    /// Most bytes of a request's line and headers (at least 8192); larger heads get 431.
    #[arg(long, env = "CLICKSTREAM_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Most open client connections; one more is answered 503 with Retry-After and closed.
    #[arg(long, env = "CLICKSTREAM_MAX_CONNECTIONS", default_value_t = 1_000)]
    pub max_connections: usize,

    /// Most ingestion requests handled at once (body reading included); one more is answered
    /// 503 with Retry-After at once instead of queueing. Bounds memory at about three times
    /// --max-batch-bytes per request.
    #[arg(long, env = "CLICKSTREAM_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,

    /// On SIGTERM/SIGINT, wait at most this many seconds for in-flight requests.
    #[arg(long, env = "CLICKSTREAM_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,

    /// Log format.
    #[arg(long, env = "CLICKSTREAM_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

fn parse_write_key(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, source)) if !key.trim().is_empty() && !source.trim().is_empty() => {
            Ok((key.trim().to_owned(), source.trim().to_owned()))
        }
        _ => Err(format!("expected KEY=SOURCE (e.g. wk_live_123=storefront), got {text:?}")),
    }
}

impl Config {
    /// Reads the configuration from the process's arguments, environment and config file.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::args_os())
    }

    /// Reads the configuration from `args` (the first is the program name), the environment
    /// and the config file they name.
    pub fn load_from<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let config: Config = cli_support::parse(args)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.sink == SinkKind::Pubsub {
            if self.pubsub_project.is_none() {
                return Err(ConfigError::Invalid(
                    "sink=pubsub needs --pubsub-project (or CLICKSTREAM_PUBSUB_PROJECT)".into(),
                ));
            }
            if self.write_keys.is_empty() {
                return Err(ConfigError::Invalid(
                    "sink=pubsub needs at least one --write-key KEY=SOURCE (or \
                     CLICKSTREAM_WRITE_KEYS); the development key is only for the local spool"
                        .into(),
                ));
            }
        }
        if self.max_batch_events == 0 || self.max_event_bytes == 0 || self.max_batch_bytes == 0 {
            return Err(ConfigError::Invalid("batch and event limits must be above 0".into()));
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError::Invalid(format!(
                "--max-header-bytes must be at least {MIN_HEADER_BYTES} (HTTP/1.1 needs that much), got {}",
                self.max_header_bytes
            )));
        }
        if self.max_connections == 0 || self.max_in_flight == 0 {
            return Err(ConfigError::Invalid("--max-connections and --max-in-flight must be above 0".into()));
        }
        if self.request_timeout_ms == 0 || self.header_timeout_ms == 0 {
            return Err(ConfigError::Invalid("--request-timeout-ms and --header-timeout-ms must be above 0".into()));
        }
        Ok(())
    }

    /// The address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        match self.port {
            Some(port) => SocketAddr::from(([0, 0, 0, 0], port)),
            None => self.listen,
        }
    }

    /// Write key → source id; the development key when none is configured.
    pub fn write_key_map(&self) -> HashMap<String, String> {
        if self.write_keys.is_empty() {
            return HashMap::from([(DEVELOPMENT_WRITE_KEY.to_owned(), DEVELOPMENT_SOURCE.to_owned())]);
        }
        self.write_keys.iter().cloned().collect()
    }

    /// Size limits for request parsing.
    pub fn limits(&self) -> event_model::Limits {
        event_model::Limits {
            max_batch_events: self.max_batch_events,
            max_batch_bytes: self.max_batch_bytes,
            max_event_bytes: self.max_event_bytes,
            ..event_model::Limits::default()
        }
    }

    /// The request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Connection-level limits of the HTTP server.
    pub fn server_limits(&self) -> crate::server::ServerLimits {
        crate::server::ServerLimits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            max_header_bytes: self.max_header_bytes,
            max_connections: self.max_connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configuration_at_all_is_the_embedded_default() {
        let config = Config::load_from(["clickstream-collector"]).unwrap();
        assert_eq!(config.sink, SinkKind::Spool);
        assert_eq!(config.write_key_map().get(DEVELOPMENT_WRITE_KEY).unwrap(), DEVELOPMENT_SOURCE);
        assert_eq!(config.limits(), event_model::Limits::default());
    }

    #[test]
    fn a_config_file_sets_defaults_that_flags_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collector.toml");
        std::fs::write(
            &path,
            "max_batch_events = 100\nwrite-key = [\"k1=shop\", \"k2=app\"]\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let config = Config::load_from(["c", "--config", file, "--listen", "127.0.0.1:9001"]).unwrap();
        assert_eq!(config.max_batch_events, 100);
        assert_eq!(config.listen_addr().port(), 9001);
        let keys = config.write_key_map();
        assert_eq!(keys.get("k2").unwrap(), "app");
        assert!(!keys.contains_key(DEVELOPMENT_WRITE_KEY));
    }

    #[test]
    fn an_unknown_file_option_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collector.toml");
        std::fs::write(&path, "max_batch_evnts = 100\n").unwrap();
        let error = Config::load_from(["c", "--config", path.to_str().unwrap()]).unwrap_err();
        assert!(error.to_string().contains("max_batch_evnts"), "{error}");
    }

    #[test]
    fn pubsub_without_project_or_keys_says_what_to_set() {
        let error = Config::load_from(["c", "--sink", "pubsub"]).unwrap_err();
        assert!(error.to_string().contains("--pubsub-project"), "{error}");
        let error = Config::load_from(["c", "--sink", "pubsub", "--pubsub-project", "p"]).unwrap_err();
        assert!(error.to_string().contains("--write-key"), "{error}");
    }

    #[test]
    fn malformed_write_keys_are_refused_with_the_expected_form() {
        let error = Config::load_from(["c", "--write-key", "nokey"]).unwrap_err();
        assert!(error.to_string().contains("KEY=SOURCE"), "{error}");
    }

    #[test]
    fn limits_that_cannot_work_are_refused_naming_the_flag() {
        let error = Config::load_from(["c", "--max-header-bytes", "1024"]).unwrap_err();
        assert!(error.to_string().contains("--max-header-bytes"), "{error}");
        let error = Config::load_from(["c", "--max-in-flight", "0"]).unwrap_err();
        assert!(error.to_string().contains("--max-in-flight"), "{error}");
        let error = Config::load_from(["c", "--request-timeout-ms", "0"]).unwrap_err();
        assert!(error.to_string().contains("--request-timeout-ms"), "{error}");
    }

    #[test]
    fn port_overrides_listen_on_all_interfaces() {
        let config = Config::load_from(["c", "--port", "8081"]).unwrap();
        assert_eq!(config.listen_addr(), "0.0.0.0:8081".parse().unwrap());
    }
}
