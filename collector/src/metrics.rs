//! The collector's Prometheus metrics, all named `clickstream_collector_<noun>_<unit>`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use queue::QueueDepth;

/// The process-wide recorder's handle (installed on first use).
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
            handle
        })
        .clone()
}

/// One HTTP request finished. Labels are static strings for the statuses the collector
/// answers with, so the common case allocates nothing.
pub fn request_finished(route: &'static str, status: StatusCode, elapsed: Duration) {
    let status: metrics::SharedString = match status.as_u16() {
        200 => "200".into(),
        204 => "204".into(),
        400 => "400".into(),
        401 => "401".into(),
        404 => "404".into(),
        405 => "405".into(),
        408 => "408".into(),
        413 => "413".into(),
        415 => "415".into(),
        429 => "429".into(),
        500 => "500".into(),
        503 => "503".into(),
        other => other.to_string().into(),
    };
    metrics::counter!("clickstream_collector_requests_total", "route" => route, "status" => status).increment(1);
    metrics::histogram!("clickstream_collector_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
}

/// Events stored for `source`.
pub fn events_accepted(source: &str, count: usize) {
    metrics::counter!("clickstream_collector_events_accepted_total", "source" => source.to_owned())
        .increment(count as u64);
}

/// Events rejected, by the rule they broke.
pub fn events_rejected(reason: &str, count: usize) {
    metrics::counter!("clickstream_collector_events_rejected_total", "reason" => reason.to_owned())
        .increment(count as u64);
}

/// A request refused by the rate limit.
pub fn rate_limited(source: &str) {
    metrics::counter!("clickstream_collector_rate_limited_requests_total", "source" => source.to_owned())
        .increment(1);
}

/// A publish to the sink finished.
pub fn publish_finished(sink: &'static str, elapsed: Duration, ok: bool) {
    metrics::histogram!("clickstream_collector_publish_duration_seconds", "sink" => sink)
        .record(elapsed.as_secs_f64());
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
