//! Rejected events, kept as typed failures.
//!
//! The collector never drops an event silently: an event that fails validation (or a batch that
//! cannot be parsed at all) becomes a [`FailedEvent`] on the dead-letter stream — the spool's
//! `failed` stream locally, the dead-letter topic on Pub/Sub — with every reason and the payload
//! exactly as it was sent, so it can be inspected, fixed and replayed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One reason a field is invalid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `product.price`; `event` or `body` for the whole thing.
    pub field: String,
    /// Machine-readable rule name, e.g. `required`, `range`, `currency`, `invalid`.
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), code: code.to_owned(), message: message.into() }
    }
}

/// Which stage refused the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureStage {
    /// The collector's validation.
    Collector,
    /// The batcher could not decode a queued message.
    Batcher,
}

/// An event the pipeline refused, with why and what was sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedEvent {
    /// UUIDv7 of this failure record.
    pub failure_id: String,
    /// When it was refused.
    pub failed_at: DateTime<Utc>,
    /// Which stage refused it.
    pub stage: FailureStage,
    /// Source of the write key the event was sent with.
    pub source_id: Option<String>,
    /// Position of the event in its batch, when it came in one.
    pub index: Option<usize>,
    /// Every reason.
    pub errors: Vec<FieldError>,
    /// The event's JSON (or the raw message) exactly as received, cut to at most
    /// [`MAX_FAILED_PAYLOAD_BYTES`].
    pub payload: String,
    /// True when `payload` was cut.
    pub payload_truncated: bool,
}

/// Most bytes of a rejected payload kept in its failure record.
pub const MAX_FAILED_PAYLOAD_BYTES: usize = 64 * 1024;

impl FailedEvent {
    /// A failure record for `payload`, cut at a character boundary when it is too long.
    pub fn new(
        stage: FailureStage,
        source_id: Option<String>,
        index: Option<usize>,
        errors: Vec<FieldError>,
        payload: &str,
    ) -> Self {
        let mut cut = payload.len().min(MAX_FAILED_PAYLOAD_BYTES);
        while !payload.is_char_boundary(cut) {
            cut -= 1;
        }
        Self {
            failure_id: uuid::Uuid::now_v7().to_string(),
            failed_at: Utc::now(),
            stage,
            source_id,
            index,
            errors,
            payload: payload[..cut].to_owned(),
            payload_truncated: cut < payload.len(),
        }
    }

    /// The queue encoding (JSON).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_payloads_are_cut_at_a_character_boundary_and_flagged() {
        let payload = "é".repeat(MAX_FAILED_PAYLOAD_BYTES);
        let failed = FailedEvent::new(FailureStage::Collector, None, Some(3), vec![], &payload);
        assert!(failed.payload_truncated);
        assert!(failed.payload.len() <= MAX_FAILED_PAYLOAD_BYTES);
        assert_eq!(failed.index, Some(3));
        let short = FailedEvent::new(FailureStage::Batcher, None, None, vec![], "{}");
        assert!(!short.payload_truncated);
        assert_eq!(short.payload, "{}");
    }
}
