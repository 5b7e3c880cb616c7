//! The API's errors and the one place that decides their HTTP status.
//!
//! Every error answers with a JSON body `{"error": <code>, "message": <text>, "errors": [...]}`
//! where `errors` lists each offending field (`index` for events of a batch). Retryable errors
//! (429, 503) carry `Retry-After`; a 408 closes the connection.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use event_model::FieldError;
use queue::SinkError;
use serde::Serialize;

/// A field error of an event at `index` in its batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IndexedFieldError {
    /// Position of the event in the request (0 for a single event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// Dotted path of the field.
    pub field: String,
    /// Rule that failed.
    pub code: String,
    /// What is wrong.
    pub message: String,
}

impl IndexedFieldError {
    /// Attaches a batch index to a field error.
    pub fn new(index: Option<usize>, error: FieldError) -> Self {
        Self { index, field: error.field, code: error.code, message: error.message }
    }
}

/// Everything the API can answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No write key, or one that is not configured.
    #[error("a valid write key is required (HTTP Basic username, or the X-Write-Key header)")]
    Unauthorized,
    /// The body, or every event in it, is invalid.
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// Each problem.
        errors: Vec<IndexedFieldError>,
    },
    /// The body or a batch is over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// A content type or encoding the API does not take.
    #[error("{0}")]
    UnsupportedMedia(String),
    /// The write key sent more events than its rate allows.
    #[error("rate limit exceeded for this write key; retry after {retry_after:?}")]
    RateLimited {
        /// When a retry can succeed.
        retry_after: Duration,
    },
    /// The request (body included) took longer than the request deadline; the connection is
    /// closed with the answer.
    #[error("the request took longer than {after:?} (slow body?); nothing was stored")]
    Timeout {
        /// The deadline.
        after: Duration,
    },
    /// More requests are in flight than the collector handles at once; nothing was read.
    #[error("the collector is at its limit of requests in flight; retry after 1 s")]
    Shed,
    /// The queue could not make the events durable; nothing was accepted.
    #[error("events were not stored: {0}; retry with the same event_ids")]
    Unavailable(SinkError),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [IndexedFieldError],
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Shed => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unavailable(SinkError::Rejected(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The machine-readable error code of the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Invalid { .. } => "invalid_request",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMedia(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Timeout { .. } => "request_timeout",
            ApiError::Shed => "overloaded",
            ApiError::Unavailable(SinkError::Overloaded(_)) => "overloaded",
            ApiError::Unavailable(_) => "unavailable",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            ApiError::Unavailable(SinkError::Overloaded(_)) | ApiError::Shed => Some(Duration::from_secs(1)),
            ApiError::Unavailable(SinkError::Unavailable(_)) => Some(Duration::from_secs(5)),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let errors = match &self {
            ApiError::Invalid { errors, .. } => errors.as_slice(),
            _ => &[],
        };
        let body = ErrorBody { error: self.code(), message: self.to_string(), errors };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(wait) = self.retry_after() {
            // Retry-After is whole seconds; round up so a client never retries too early.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if matches!(self, ApiError::Timeout { .. }) {
            // The rest of a slow body is not waited for: the connection goes with the answer.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"clickstream\""));
        }
        response
    }
}
