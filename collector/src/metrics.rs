//! The collector's Prometheus metrics, all named `clickstream_collector_<noun>_<unit>`.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use metrics::{Counter, Histogram};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use queue::QueueDepth;

/// How often histogram samples are folded into their buckets when nothing scrapes `/metrics`.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process-wide recorder's handle (installed on first use).
///
/// A recorder built this way keeps every histogram sample until something drains it: a scrape,
/// or the upkeep thread started here, so memory stays bounded when nothing scrapes.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests embedding several apps); the
            // handle still renders this one's registry.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            let started = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
            if let Err(error) = started {
                tracing::warn!(%error, "could not start the metrics upkeep thread; histograms drain only when scraped");
            }
            handle
        })
        .clone()
}

/// Statuses the collector answers with; each gets a registered counter per route.
const STATUSES: [u16; 12] = [200, 204, 400, 401, 404, 405, 408, 413, 415, 429, 500, 503];
/// Route label of a request no route matched.
const UNMATCHED: &str = "unmatched";
/// Sinks, for the publish metrics.
const SINKS: [&str; 2] = ["spool", "pubsub"];

/// Handles of the metrics recorded on every request, each registered on first use (so
/// `/metrics` lists only series that happened). The `counter!` and `histogram!` macros build and
/// hash a key, labels and all, on every call.
struct Handles {
    /// `[route][status]`, routes in [`crate::routes::ALL`] order then `unmatched`.
    requests: Vec<Vec<OnceLock<Counter>>>,
    durations: Vec<OnceLock<Histogram>>,
    publish_durations: Vec<OnceLock<Histogram>>,
    accepted: RwLock<HashMap<String, Counter>>,
}

fn handles() -> &'static Handles {
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    HANDLES.get_or_init(|| {
        // Registers with the collector's recorder, never with the no-op one.
        let _ = handle();
        let routes = crate::routes::ALL.len() + 1;
        Handles {
            requests: (0..routes).map(|_| STATUSES.iter().map(|_| OnceLock::new()).collect()).collect(),
            durations: (0..routes).map(|_| OnceLock::new()).collect(),
            publish_durations: SINKS.iter().map(|_| OnceLock::new()).collect(),
            accepted: RwLock::new(HashMap::new()),
        }
    })
}

/// One HTTP request finished. `route` is one of [`crate::routes::ALL`] or `unmatched`.
pub fn request_finished(route: &'static str, status: StatusCode, elapsed: Duration) {
    let handles = handles();
    let route_index = crate::routes::ALL.iter().position(|r| *r == route).unwrap_or(crate::routes::ALL.len());
    let code = status.as_u16();
    let label = if route_index < crate::routes::ALL.len() { route } else { UNMATCHED };
    match STATUSES.iter().position(|s| *s == code) {
        Some(status_index) => handles.requests[route_index][status_index]
            .get_or_init(|| {
                metrics::counter!("clickstream_collector_requests_total", "route" => label, "status" => code.to_string())
            })
            .increment(1),
        None => metrics::counter!("clickstream_collector_requests_total", "route" => label, "status" => code.to_string())
            .increment(1),
    }
    handles.durations[route_index]
        .get_or_init(|| metrics::histogram!("clickstream_collector_request_duration_seconds", "route" => label))
        .record(elapsed.as_secs_f64());
}

/// Events stored for `source`.
pub fn events_accepted(source: &str, count: usize) {
    let accepted = &handles().accepted;
    if let Some(counter) = accepted.read().ok().and_then(|map| map.get(source).cloned()) {
        counter.increment(count as u64);
        return;
    }
    let counter = metrics::counter!("clickstream_collector_events_accepted_total", "source" => source.to_owned());
    counter.increment(count as u64);
    if let Ok(mut map) = accepted.write() {
        map.insert(source.to_owned(), counter);
    }
}

/// Events rejected, by the rule they broke.
pub fn events_rejected(reason: &str, count: usize) {
    metrics::counter!("clickstream_collector_events_rejected_total", "reason" => reason.to_owned())
        .increment(count as u64);
}

/// A request refused by the rate limit.
pub fn rate_limited(source: &str) {
    metrics::counter!("clickstream_collector_rate_limited_requests_total", "source" => source.to_owned()).increment(1);
}

/// A publish to the sink finished.
pub fn publish_finished(sink: &'static str, elapsed: Duration, ok: bool) {
    match SINKS.iter().position(|s| *s == sink) {
        Some(index) => handles().publish_durations[index]
            .get_or_init(|| metrics::histogram!("clickstream_collector_publish_duration_seconds", "sink" => sink))
            .record(elapsed.as_secs_f64()),
        None => metrics::histogram!("clickstream_collector_publish_duration_seconds", "sink" => sink)
            .record(elapsed.as_secs_f64()),
    }
    if !ok {
        metrics::counter!("clickstream_collector_publish_failures_total", "sink" => sink).increment(1);
    }
}

/// What waits in the queue.
pub fn queue_depth(depth: QueueDepth) {
    if let Some(segments) = depth.segments {
        metrics::gauge!("clickstream_collector_queue_depth_segments").set(segments as f64);
    }
    if let Some(bytes) = depth.bytes {
        metrics::gauge!("clickstream_collector_queue_depth_bytes").set(bytes as f64);
    }
    if let Some(messages) = depth.messages {
        metrics::gauge!("clickstream_collector_queue_depth_messages").set(messages as f64);
    }
}

/// A connection over `--max-connections`, answered 503 and closed.
pub fn connection_refused() {
    metrics::counter!("clickstream_collector_connections_refused_total").increment(1);
}

/// An ingestion request over `--max-in-flight`, answered 503 without being handled.
pub fn request_shed() {
    metrics::counter!("clickstream_collector_requests_shed_total").increment(1);
}
