//! The layer every request passes: its deadline, its trace span and log line, and its metrics.
//!
//! One hand-written layer instead of tower-http's `TraceLayer` and `TimeoutLayer` plus an axum
//! `from_fn` middleware: each of those boxes or clones something per request, and together
//! they cost a single-event request about a tenth of the collector's CPU. This one adds a
//! timer, a span and a few atomic increments, with no allocation.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use tracing::Span;

use crate::{metrics, routes};

/// Applies [`Observe`] to a service.
#[derive(Clone, Copy, Debug)]
pub struct ObserveLayer {
    /// Whole-request deadline; a request still running then is answered `408`.
    pub timeout: Duration,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, timeout: self.timeout }
    }
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
    timeout: Duration,
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
        let inner = span.in_scope(|| self.inner.call(request));
        ObserveFuture { inner: tokio::time::timeout(self.timeout, inner), route, started: Instant::now(), span }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Observe`].
    pub struct ObserveFuture<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        route: &'static str,
        started: Instant,
        span: Span,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for ObserveFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let response = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(Ok(response))) => response,
            Poll::Ready(Ok(Err(never))) => match never {},
            Poll::Ready(Err(_elapsed)) => StatusCode::REQUEST_TIMEOUT.into_response(),
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
