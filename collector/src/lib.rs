//! The clickstream collector: an axum service that validates, enriches and durably queues
//! e-commerce tracking events.
//!
//! * [`config`] — the typed configuration (flags, environment, TOML file);
//! * [`api`] — the handlers and [`api::ingest`], the one path every event takes;
//! * [`enrich`] — server time, clock-skew correction, IP truncation, user-agent parsing;
//! * [`error`] — the error enum whose `IntoResponse` decides every status;
//! * [`state`] — the shared state holding the sink as a trait object;
//! * [`segment`] — Segment-compatible routes mapped onto the same contract and path;
//! * [`server`] — the HTTP server with header timeouts, connection limits and graceful shutdown;
//! * [`metrics`] — Prometheus metrics;
//! * [`nesting`] — naming the field of a body nested too deeply to parse.
//!
//! [`app`] builds the router; tests drive it with `tower::ServiceExt::oneshot` or a real socket.

pub mod api;
pub mod config;
pub mod enrich;
pub mod error;
pub mod metrics;
pub mod nesting;
pub mod observe;
pub mod segment;
pub mod server;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use state::{AppState, StateSettings};

/// HTTP-level settings of the router.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Origins allowed by CORS; `*` allows any.
    pub cors_origins: Vec<String>,
    /// Whole-request deadline.
    pub request_timeout: Duration,
    /// Most ingestion requests handled at once; one more is answered 503 at once.
    pub max_in_flight: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self { cors_origins: Vec::new(), request_timeout: Duration::from_secs(15), max_in_flight: 256 }
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::POST, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                header::AUTHORIZATION,
                HeaderName::from_static(api::WRITE_KEY_HEADER),
            ])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(86_400)),
    )
}

/// Every route the router serves. Request metrics label requests with these strings, so
/// recording a request allocates nothing.
pub mod routes {
    /// Native ingestion.
    pub const EVENTS: &str = "/v1/events";
    /// Segment `track`.
    pub const TRACK: &str = "/v1/track";
    /// Segment `page`.
    pub const PAGE: &str = "/v1/page";
    /// Segment `screen`.
    pub const SCREEN: &str = "/v1/screen";
    /// Segment `identify`.
    pub const IDENTIFY: &str = "/v1/identify";
    /// Segment `batch`.
    pub const BATCH: &str = "/v1/batch";
    /// Liveness.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness.
    pub const READYZ: &str = "/readyz";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// All of them.
    pub const ALL: [&str; 9] = [EVENTS, TRACK, PAGE, SCREEN, IDENTIFY, BATCH, HEALTHZ, READYZ, METRICS];
}

/// The collector's router over `state`.
pub fn app(state: AppState, http: &HttpSettings) -> Router {
    let ingest = Router::new()
        .route(routes::EVENTS, post(api::post_events))
        .route(routes::TRACK, post(segment::track))
        .route(routes::PAGE, post(segment::page))
        .route(routes::SCREEN, post(segment::screen))
        .route(routes::IDENTIFY, post(segment::identify))
        .route(routes::BATCH, post(segment::batch));
    let ingest = match cors(&http.cors_origins) {
        Some(cors) => ingest.layer(cors),
        None => ingest,
    };
    Router::new()
        .merge(ingest)
        .route(routes::HEALTHZ, get(api::healthz))
        .route(routes::READYZ, get(api::readyz))
        .route(routes::METRICS, get(api::metrics))
        .layer(observe::ObserveLayer {
            timeout: http.request_timeout,
            in_flight: Arc::new(tokio::sync::Semaphore::new(http.max_in_flight.max(1))),
        })
        .with_state(state)
}
