//! The router's shared state: the sink (as a trait object, so any queue can sit behind it), the
//! write keys, limits, the rate limiter and the metrics handle.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use event_model::Limits;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::PrometheusHandle;
use queue::EventSink;

use crate::enrich::{TimeWindow, UserAgentParser};
use crate::error::ApiError;

/// Per-write-key event rate limit (`governor`'s keyed GCRA limiter).
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    burst: u32,
}

impl RateLimit {
    /// `per_second` events per second with bursts of `burst`; `None` when `per_second` is 0.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        Some(Self { limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)), burst: burst.get() })
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    sink: Arc<dyn EventSink>,
    write_keys: HashMap<String, Arc<str>>,
    limits: Limits,
    time_window: TimeWindow,
    rate_limit: Option<RateLimit>,
    forwarded_for_hops: usize,
    metrics: PrometheusHandle,
    user_agents: UserAgentParser,
}

/// Builder-style settings for [`AppState::new`].
pub struct StateSettings {
    /// Write key → source id.
    pub write_keys: HashMap<String, String>,
    /// Size limits.
    pub limits: Limits,
    /// Accepted event-time window.
    pub time_window: TimeWindow,
    /// Per-key rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// Proxies that append to X-Forwarded-For.
    pub forwarded_for_hops: usize,
}

impl StateSettings {
    /// Defaults with the given write keys: default limits, a 7-day/10-minute window, no rate
    /// limit, no proxies.
    pub fn with_keys(write_keys: HashMap<String, String>) -> Self {
        Self {
            write_keys,
            limits: Limits::default(),
            time_window: TimeWindow { max_age: Duration::from_secs(7 * 86_400), max_future: Duration::from_secs(600) },
            rate_limit: None,
            forwarded_for_hops: 0,
        }
    }
}

impl AppState {
    /// State over `sink` with `settings`.
    pub fn new(sink: Arc<dyn EventSink>, settings: StateSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                sink,
                write_keys: settings.write_keys.into_iter().map(|(key, source)| (key, source.into())).collect(),
                limits: settings.limits,
                time_window: settings.time_window,
                rate_limit: settings.rate_limit,
                forwarded_for_hops: settings.forwarded_for_hops,
                metrics: crate::metrics::handle(),
                user_agents: UserAgentParser::default(),
            }),
        }
    }

    /// The queue events go to.
    pub fn sink(&self) -> &Arc<dyn EventSink> {
        &self.inner.sink
    }

    /// The source a write key belongs to (shared, not copied, per request).
    pub fn source_for(&self, key: &str) -> Option<Arc<str>> {
        self.inner.write_keys.get(key).cloned()
    }

    /// Size limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Accepted event-time window.
    pub fn time_window(&self) -> TimeWindow {
        self.inner.time_window
    }

    /// Proxies that append to X-Forwarded-For.
    pub fn forwarded_for_hops(&self) -> usize {
        self.inner.forwarded_for_hops
    }

    /// The cached user-agent parser.
    pub fn user_agents(&self) -> &UserAgentParser {
        &self.inner.user_agents
    }

    /// The Prometheus handle.
    pub fn metrics_handle(&self) -> &PrometheusHandle {
        &self.inner.metrics
    }

    /// Charges `events` to `source`'s rate limit.
    pub fn check_rate(&self, source: &str, events: usize) -> Result<(), ApiError> {
        let Some(rate) = &self.inner.rate_limit else { return Ok(()) };
        let cells = u32::try_from(events.max(1)).unwrap_or(u32::MAX).min(rate.burst);
        let Some(cells) = NonZeroU32::new(cells) else { return Ok(()) };
        match rate.limiter.check_key_n(&source.to_owned(), cells) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                crate::metrics::rate_limited(source);
                Err(ApiError::RateLimited { retry_after: not_until.wait_time_from(DefaultClock::default().now()) })
            }
            Err(_) => Err(ApiError::RateLimited { retry_after: Duration::from_secs(1) }),
        }
    }
}
