//! The HTTP handlers, and [`ingest`], the path every event takes whatever route it came by.
//!
//! `POST /v1/events` takes one event or a batch `{"sent_at": …, "events": […]}`. The batch rule:
//! valid events are accepted and rejected ones are reported by index — the answer is `200` when
//! at least one event was accepted (the body lists the rejected ones) and `400` when none was.
//! Either way every rejected event is written to the dead-letter stream before the answer, so
//! nothing a client sent is silently dropped. A `2xx` means every accepted event is durable.
//! Further routes (Segment-compatible `/v1/track`, `/v1/batch`, …) map their payloads to tracker
//! events and call [`ingest`] the same way.

use std::borrow::Cow;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::Utc;
use event_model::failed::FailureStage;
use event_model::tracker::{Batch, BodyError};
use event_model::{FailedEvent, FieldError};
use serde::Serialize;

use crate::enrich::{RequestContext, enrich};
use crate::error::{ApiError, IndexedFieldError};
use crate::metrics as m;
use crate::state::AppState;

/// Header that carries a write key when HTTP Basic is not used.
pub const WRITE_KEY_HEADER: &str = "x-write-key";

/// The answer to an accepted request.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct IngestResponse {
    /// Events stored.
    pub accepted: usize,
    /// The stored event ids, in request order (`null` for rejected events).
    pub event_ids: Vec<Option<uuid::Uuid>>,
    /// Each rejected event's problems, by index.
    pub rejected: Vec<IndexedFieldError>,
}

impl IngestResponse {
    /// The answer's JSON: what serde writes for this struct, with the ids written directly.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.event_ids.len() * 39);
        out.extend_from_slice(b"{\"accepted\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.accepted).as_bytes());
        out.extend_from_slice(b",\"event_ids\":[");
        for (i, id) in self.event_ids.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match id {
                // A hyphenated UUID needs no escaping.
                Some(id) => {
                    out.push(b'"');
                    out.extend_from_slice(id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).as_bytes());
                    out.push(b'"');
                }
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b"],\"rejected\":");
        // Rejections carry free text: serde escapes it.
        if serde_json::to_writer(&mut out, &self.rejected).is_err() {
            out.extend_from_slice(b"[]");
        }
        out.push(b'}');
        out
    }
}

/// Resolves the request's write key to its source id.
///
/// The key may come as the `X-Write-Key` header or the HTTP Basic username. Every credential
/// presented must be valid: a request with a good header key and a bad `Authorization` is
/// refused, so a misconfigured client learns about it instead of working by accident.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Arc<str>, ApiError> {
    let header_key = headers.get(WRITE_KEY_HEADER).map(|v| v.to_str().ok().map(Cow::Borrowed));
    let basic_key = headers.get(header::AUTHORIZATION).map(|_| basic_username(headers).map(Cow::Owned));
    let mut source = None;
    for presented in [header_key, basic_key].into_iter().flatten() {
        let found = presented.and_then(|key| state.source_for(&key)).ok_or(ApiError::Unauthorized)?;
        source.get_or_insert(found);
    }
    source.ok_or(ApiError::Unauthorized)
}

fn basic_username(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':').map(|(user, _)| user).unwrap_or(&text).to_owned())
}

/// The client IP: the socket peer, or the X-Forwarded-For entry `hops` from the right.
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, hops: usize) -> Option<IpAddr> {
    if hops == 0 {
        return peer.map(|p| p.ip());
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    forwarded
        .len()
        .checked_sub(hops)
        .and_then(|i| forwarded.get(i))
        .and_then(|ip| ip.parse().ok())
        .or_else(|| peer.map(|p| p.ip()))
}

/// Decodes the body per Content-Encoding, never inflating past `max_bytes`. An identity body is
/// passed on as it is, without a copy.
pub fn decode_body(headers: &HeaderMap, body: Bytes, max_bytes: usize) -> Result<Bytes, ApiError> {
    let encoding =
        headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => {
            if body.len() > max_bytes {
                return Err(too_large(body.len(), max_bytes));
            }
            Ok(body)
        }
        Some("gzip") | Some("x-gzip") => {
            let mut decoded = Vec::with_capacity(body.len() * 4);
            let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(&body[..]).take(limit).read_to_end(&mut decoded).map_err(|e| {
                ApiError::Invalid {
                    message: format!("the body is not valid gzip: {e}"),
                    errors: vec![IndexedFieldError::new(None, FieldError::new("body", "gzip", "not valid gzip data"))],
                }
            })?;
            if decoded.len() > max_bytes {
                return Err(ApiError::TooLarge(format!("the decompressed body exceeds {max_bytes} bytes")));
            }
            Ok(decoded.into())
        }
        Some(other) => Err(ApiError::UnsupportedMedia(format!(
            "Content-Encoding {other:?} is not supported; send identity or gzip"
        ))),
    }
}

/// Nesting at which a body serde_json refused is searched for the field at fault: below its
/// limit of 128, so the field is always found.
pub(crate) const MAX_SCAN_DEPTH: usize = 100;

/// Reads a request body of at most `max_bytes`; 413 above. The rest of a body up to as much
/// again is read and dropped before answering, so the client is not reset (closing on unread
/// data sends RST, which can discard the answer before the client reads it); a body announced
/// as larger than that is refused at once.
pub async fn read_body(body: axum::body::Body, max_bytes: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let drain_limit = max_bytes.saturating_mul(2);
    let announced = axum::body::HttpBody::size_hint(&body).exact();
    if announced.is_some_and(|length| length > drain_limit as u64) {
        return Err(ApiError::TooLarge(format!(
            "the body is {} bytes; at most {max_bytes} bytes are accepted",
            announced.unwrap_or_default()
        )));
    }
    let unreadable = |e: axum::Error| ApiError::Invalid {
        message: format!("could not read the body: {e}"),
        errors: vec![IndexedFieldError::new(None, FieldError::new("body", "unreadable", e.to_string()))],
    };
    let mut body = body;
    let mut collected = bytes::BytesMut::new();
    let mut seen = 0usize;
    // Bounded: every frame adds to `seen`, which stops the loop at `drain_limit`; the request
    // deadline bounds the time.
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(unreadable)?.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > drain_limit {
            break;
        }
        if seen <= max_bytes {
            if collected.is_empty() && seen == data.len() && announced == Some(data.len() as u64) {
                // The whole body in one frame: passed on without a copy.
                return Ok(data);
            }
            collected.extend_from_slice(&data);
        }
    }
    if seen > drain_limit {
        return Err(ApiError::TooLarge(format!("the body exceeds {max_bytes} bytes")));
    }
    if seen > max_bytes {
        return Err(too_large(seen, max_bytes));
    }
    Ok(collected.freeze())
}

fn too_large(size: usize, max: usize) -> ApiError {
    ApiError::TooLarge(format!("the body is {size} bytes; at most {max} bytes are accepted"))
}

/// Refuses a Content-Type other than JSON (or text/plain, for beacons); no Content-Type is JSON.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let mime = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim();
    // text/plain is what navigator.sendBeacon can send without a CORS preflight.
    if mime.eq_ignore_ascii_case("application/json") || mime.eq_ignore_ascii_case("text/plain") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMedia(format!("Content-Type {mime:?} is not supported; send application/json")))
    }
}

/// `POST /v1/events`.
#[axum::debug_handler]
pub async fn post_events(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let received_at = Utc::now();
    // Taken apart rather than extracted, which would clone the headers.
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| *peer);
    let source_id = authenticate(&state, &headers)?;
    check_content_type(&headers)?;
    let max_body = state.limits().max_batch_bytes;
    let raw = read_body(body, max_body).await?;
    let decoded = decode_body(&headers, raw, max_body)?;
    let request = RequestContext {
        source_id,
        received_at,
        batch_sent_at: None,
        client_ip: client_ip(&headers, peer, state.forwarded_for_hops()),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        user_agent_facts: None,
    };
    let text = match std::str::from_utf8(&decoded) {
        Ok(text) => text,
        Err(e) => {
            let error = FieldError::new("body", "encoding", format!("the body is not UTF-8: {e}"));
            return Err(reject_body(&state, &request, error, &String::from_utf8_lossy(&decoded)).await);
        }
    };
    let batch = match event_model::tracker::parse_body(text, &state.limits()) {
        Ok(batch) => batch,
        Err(error) => {
            let deep;
            let (field, code) = match &error {
                BodyError::Malformed { message, .. } if crate::nesting::is_too_deep(message) => {
                    deep = crate::nesting::too_deep(text, MAX_SCAN_DEPTH).unwrap_or_else(|| "body".into());
                    (deep.as_str(), "too_deep")
                }
                BodyError::Malformed { field, .. } => (field.as_str(), "malformed"),
                BodyError::TooManyEvents { .. } => ("events", "too_many_events"),
                BodyError::Empty => ("events", "empty"),
            };
            let field_error = FieldError::new(field, code, error.to_string());
            return Err(reject_body(&state, &request, field_error, text).await);
        }
    };
    let response = ingest(&state, request, batch).await?;
    let status = if response.accepted > 0 { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    if status == StatusCode::BAD_REQUEST {
        return Err(ApiError::Invalid {
            message: "no event in the request is valid; see errors".into(),
            errors: response.rejected,
        });
    }
    Ok((status, [(header::CONTENT_TYPE, "application/json")], response.to_json()).into_response())
}

/// Dead-letters a body that could not be split into events, and returns the error to answer.
async fn reject_body(state: &AppState, request: &RequestContext, error: FieldError, payload: &str) -> ApiError {
    let too_many = error.code == "too_many_events";
    let failed = FailedEvent::new(
        FailureStage::Collector,
        Some(request.source_id.to_string()),
        None,
        vec![error.clone()],
        payload,
    );
    if let Err(sink_error) = state.sink().publish(&[], &[failed]).await {
        return ApiError::Unavailable(sink_error);
    }
    m::events_rejected(&error.code, 1);
    if too_many {
        return ApiError::TooLarge(error.message);
    }
    ApiError::Invalid { message: error.message.clone(), errors: vec![IndexedFieldError::new(None, error)] }
}

/// Validates, enriches and durably stores a parsed request: the one path of every event.
///
/// Applies the write key's rate limit to the number of events, stores valid events and the
/// failure records of invalid ones together, and returns only once both are durable.
pub async fn ingest(
    state: &AppState,
    mut request: RequestContext,
    batch: Batch<'_>,
) -> Result<IngestResponse, ApiError> {
    state.check_rate(&request.source_id, batch.items.len())?;
    request.batch_sent_at = batch.sent_at;
    if request.user_agent_facts.is_none() {
        request.user_agent_facts = request.user_agent.as_deref().map(|ua| state.user_agents().parse(ua));
    }
    let single = batch.items.len() == 1;
    let mut events = Vec::with_capacity(batch.items.len());
    let mut failed = Vec::new();
    let mut rejected = Vec::new();
    let mut event_ids = Vec::with_capacity(batch.items.len());
    for (index, item) in batch.items.into_iter().enumerate() {
        let position = if single { None } else { Some(index) };
        match item.outcome {
            Ok(mut event) => {
                event_ids.push(Some(event.assign_missing_id()));
                let stored = enrich(event, &request, state.time_window(), state.user_agents());
                events.push(stored);
            }
            Err(mut errors) => {
                for error in &mut errors {
                    if crate::nesting::is_too_deep(&error.message) {
                        // serde_json's path runs 128 levels down; the event's field is enough.
                        let field = error.field.split(['.', '[']).next().unwrap_or("event");
                        error.field = if field.is_empty() { "event".to_owned() } else { field.to_owned() };
                        error.code = "too_deep".to_owned();
                    }
                    m::events_rejected(&error.code, 1);
                }
                rejected.extend(errors.iter().cloned().map(|e| IndexedFieldError::new(Some(index), e)));
                failed.push(FailedEvent::new(
                    FailureStage::Collector,
                    Some(request.source_id.to_string()),
                    position,
                    errors,
                    item.raw,
                ));
                event_ids.push(None);
            }
        }
    }
    let started = Instant::now();
    let result = state.sink().publish(&events, &failed).await;
    m::publish_finished(state.sink().kind(), started.elapsed(), result.is_ok());
    result.map_err(ApiError::Unavailable)?;
    m::events_accepted(&request.source_id, events.len());
    if single {
        for error in &mut rejected {
            error.index = None;
        }
    }
    Ok(IngestResponse { accepted: events.len(), event_ids, rejected })
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: the sink can take events.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.sink().check_ready().await {
        Ok(()) => Json(serde_json::json!({"status": "ready", "sink": state.sink().kind()})).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                serde_json::json!({"status": "unavailable", "sink": state.sink().kind(), "message": error.to_string()}),
            ),
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(depth) = state.sink().depth() {
        m::queue_depth(depth);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics_handle().render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_written_as_serde_writes_it() {
        let id = uuid::Uuid::parse_str("0190a4c2-7b1e-7c3d-8e2f-9a0b1c2d3e4f").unwrap();
        let rejected =
            IndexedFieldError::new(Some(1), FieldError::new("page.url", "url", "must be an \"absolute\" URL\n\u{1}é"));
        for response in [
            IngestResponse { accepted: 1, event_ids: vec![Some(id)], rejected: vec![] },
            IngestResponse {
                accepted: 2,
                event_ids: vec![Some(id), None, Some(uuid::Uuid::nil())],
                rejected: vec![rejected.clone()],
            },
            IngestResponse {
                accepted: 0,
                event_ids: vec![],
                rejected: vec![rejected.clone(), IndexedFieldError { index: None, ..rejected }],
            },
        ] {
            assert_eq!(String::from_utf8(response.to_json()).unwrap(), serde_json::to_string(&response).unwrap());
        }
    }
}
