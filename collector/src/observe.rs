//! The layer every request passes: the in-flight limit of ingestion routes (load shedding), its
//! deadline, its trace span and log line, and its metrics.
//!
//! One hand-written layer instead of tower-http's `TraceLayer` and `TimeoutLayer` plus an axum
//! `from_fn` middleware: each of those boxes or clones something per request, and together
//! they cost a single-event request about a tenth of the collector's CPU. This one adds a
//! timer, a span and a few atomic increments, with no allocation.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};
use tracing::Span;

use crate::error::ApiError;
use crate::{metrics, routes};

/// Applies [`Observe`] to a service.
#[derive(Clone, Debug)]
pub struct ObserveLayer {
    /// Whole-request deadline; a request still running then is answered `408`.
    pub timeout: Duration,
    /// Permits for ingestion requests in flight; without one the answer is `503` at once.
    pub in_flight: Arc<Semaphore>,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, timeout: self.timeout, in_flight: self.in_flight.clone() }
    }
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
    timeout: Duration,
    in_flight: Arc<Semaphore>,
}

/// Routes that take events, and so count against the in-flight limit; health and metrics
/// answer whatever the load.
fn is_ingestion(route: &str) -> bool {
    route.starts_with("/v1/")
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let matched = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
        let route = matched.and_then(|m| routes::ALL.iter().find(|r| **r == m).copied()).unwrap_or("unmatched");
        let span = tracing::debug_span!("request", method = %request.method(), uri = %request.uri());
        let started = Instant::now();
        let permit = if is_ingestion(route) {
            match self.in_flight.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    metrics::request_shed();
                    let state = State::Shed { response: Some(ApiError::Shed.into_response()) };
                    return ObserveFuture { state, route, started, span, _permit: None, timeout: self.timeout };
                }
            }
        } else {
            None
        };
        let inner = span.in_scope(|| self.inner.call(request));
        let state = State::Running { inner: tokio::time::timeout(self.timeout, inner) };
        ObserveFuture { state, route, started, span, _permit: permit, timeout: self.timeout }
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Running { #[pin] inner: tokio::time::Timeout<F> },
        Shed { response: Option<Response> },
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Observe`].
    pub struct ObserveFuture<F> {
        #[pin]
        state: State<F>,
        route: &'static str,
        started: Instant,
        span: Span,
        timeout: Duration,
        // Held until the answer is ready; released on drop.
        _permit: Option<OwnedSemaphorePermit>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for ObserveFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let response = match this.state.project() {
            StateProjection::Running { inner } => match inner.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Ok(response))) => response,
                Poll::Ready(Ok(Err(never))) => match never {},
                Poll::Ready(Err(_elapsed)) => ApiError::Timeout { after: *this.timeout }.into_response(),
            },
            StateProjection::Shed { response } => {
                response.take().unwrap_or_else(|| StatusCode::SERVICE_UNAVAILABLE.into_response())
            }
        };
        let elapsed = this.started.elapsed();
        let status = response.status();
        metrics::request_finished(this.route, status, elapsed);
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms = elapsed.as_secs_f64() * 1e3, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), latency_ms = elapsed.as_secs_f64() * 1e3, "request finished");
        }
        Poll::Ready(Ok(response))
    }
}
