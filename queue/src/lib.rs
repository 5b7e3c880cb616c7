//! Durable queues between the collector and the batcher.
//!
//! The collector publishes through [`EventSink`]; which queue sits behind it is configuration:
//! * [`spool::SpoolSink`] — the local spool, a crash-safe on-disk queue (the embedded default);
//! * `pubsub::PubSubSink` (feature `pubsub`) — Google Cloud Pub/Sub (production), or its
//!   emulator.
//!
//! Both return from [`EventSink::publish`] only once every event is durable (fsync'd, or
//! acknowledged by Pub/Sub), which is what lets the collector answer 2xx. Both carry each event
//! as its JSON ([`event_model::Event::to_json_bytes`]), and rejected events on a separate
//! dead-letter stream.

#[cfg(feature = "pubsub")]
pub mod pubsub;
pub mod spool;

use async_trait::async_trait;
use event_model::FailedEvent;
use event_model::event::EventView;

/// Why a publish did not make the events durable. Every kind is safe to retry: nothing was
/// acknowledged, and a retried event keeps its `event_id`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// The queue is reachable but cannot take more right now (backpressure).
    #[error("queue overloaded: {0}")]
    Overloaded(String),
    /// The queue cannot be reached or failed to store the events.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The queue refused these events as such (e.g. a record over its size limit); retrying the
    /// same events will not help.
    #[error("queue rejected the events: {0}")]
    Rejected(String),
}

impl SinkError {
    /// True when the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SinkError::Rejected(_))
    }
}

/// What is waiting in the queue, as far as the sink can tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Messages waiting, when known.
    pub messages: Option<u64>,
    /// Segments waiting (spool).
    pub segments: Option<u64>,
    /// Bytes waiting (spool).
    pub bytes: Option<u64>,
}

/// A durable destination for accepted and rejected events.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Short name for logs and metrics: `spool`, `pubsub`.
    fn kind(&self) -> &'static str;

    /// Stores `events` on the events stream and `failed` on the dead-letter stream, returning
    /// only when all of them are durable. An owned event is passed as [`event_model::Event::view`].
    async fn publish(&self, events: &[EventView<'_>], failed: &[FailedEvent]) -> Result<(), SinkError>;

    /// Ok when a publish would be expected to succeed now.
    async fn check_ready(&self) -> Result<(), SinkError>;

    /// What waits in the queue, for the queue-depth metric; `None` when the sink cannot tell.
    fn depth(&self) -> Option<QueueDepth>;

    /// Finishes in-flight publishes and releases resources.
    async fn shutdown(&self);
}
