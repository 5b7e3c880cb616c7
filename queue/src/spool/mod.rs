//! The local spool: a durable on-disk queue, the embedded default between collector and batcher.
//!
//! See [`format`](mod@format) for the on-disk layout and the crash-recovery argument, [`writer`] for group
//! commit, [`reader`] for how the batcher claims and consumes segments.

pub mod format;
pub mod reader;
pub mod writer;

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use event_model::FailedEvent;
use event_model::event::EventView;

pub use reader::{ClaimedSegment, CorruptSegment, SpoolReader};
pub use writer::{Records, SpoolDepth, SpoolWriter, SpoolWriterConfig};

use crate::{EventSink, QueueDepth, SinkError};

/// Name of the stream directory holding accepted events.
pub const EVENTS_STREAM: &str = "events";
/// Name of the stream directory holding rejected events (the local dead-letter queue).
pub const FAILED_STREAM: &str = "failed";

/// The directory of `stream` inside the spool at `root`.
pub fn stream_dir(root: &Path, stream: &str) -> PathBuf {
    root.join(stream)
}

/// Both streams of a spool, as the collector's sink.
pub struct SpoolSink {
    root: PathBuf,
    events: SpoolWriter,
    failed: SpoolWriter,
}

impl SpoolSink {
    /// Opens the spool at `config.dir` (the root; streams are subdirectories). The settings
    /// apply to both streams.
    pub fn open(config: SpoolWriterConfig) -> io::Result<Self> {
        let root = config.dir.clone();
        let events = SpoolWriter::open(SpoolWriterConfig { dir: stream_dir(&root, EVENTS_STREAM), ..config.clone() })?;
        let failed = SpoolWriter::open(SpoolWriterConfig { dir: stream_dir(&root, FAILED_STREAM), ..config })?;
        Ok(Self { root, events, failed })
    }

    /// The spool's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[async_trait]
impl EventSink for SpoolSink {
    fn kind(&self) -> &'static str {
        "spool"
    }

    async fn publish(&self, events: &[EventView<'_>], failed: &[FailedEvent]) -> Result<(), SinkError> {
        // Each event is encoded straight into the buffer the writer sends. A web event with its
        // user agent takes about 1.1 KB.
        let mut event_records = Records::with_capacity(events.len() * 1536);
        for event in events {
            event_records.push_with(|out| event.write_json(out))?;
        }
        let failed: Vec<Vec<u8>> = failed.iter().map(FailedEvent::to_json_bytes).collect();
        let (events, failed) = futures::join!(self.events.append_records(event_records), self.failed.append(&failed));
        events.and(failed)
    }

    async fn check_ready(&self) -> Result<(), SinkError> {
        self.events.check_ready().and(self.failed.check_ready())
    }

    fn depth(&self) -> Option<QueueDepth> {
        let depth = self.events.depth();
        Some(QueueDepth { messages: None, segments: Some(depth.segments), bytes: Some(depth.bytes) })
    }

    async fn shutdown(&self) {
        self.events.close();
        self.failed.close();
    }
}
