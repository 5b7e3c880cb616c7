//! Draining the local spool into the lake.
//!
//! Segment by segment: claim, read, write its events as `spool-<segment id>.parquet` in each hour
//! folder they fall in, and only then mark the segment done. A crash at any point leaves the
//! segment in the spool; reprocessing it writes objects of the same names, overwriting instead of
//! duplicating — exactly once in effect. The collector's own dead-letter stream (`failed/`) is
//! moved to `dead-letter/…/collector-<segment id>.jsonl` the same way.

use std::path::Path;
use std::time::{Duration, Instant};

use event_model::FailedEvent;
use queue::spool::{EVENTS_STREAM, FAILED_STREAM, SpoolReader, stream_dir};

use crate::lake::{ErrorKind, LakeError};
use crate::writer::{LakeWriter, Summary, WriteError, undecodable};

/// When a drain stops.
#[derive(Clone, Copy, Debug)]
pub struct RunBounds {
    /// Keep polling for new segments instead of stopping when the spool is empty.
    pub follow: bool,
    /// With `follow`, stop after this long without new segments.
    pub idle_exit: Option<Duration>,
    /// Stop claiming new segments after this long.
    pub max_runtime: Option<Duration>,
    /// How often to look for new segments while following.
    pub poll_interval: Duration,
}

impl Default for RunBounds {
    fn default() -> Self {
        Self { follow: false, idle_exit: None, max_runtime: None, poll_interval: Duration::from_millis(500) }
    }
}

/// Why a drain stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The spool could not be read.
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    /// A flush could not be written; its segment stays in the spool.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl DrainError {
    /// What a caller can do about it: after a transient failure the same drain may succeed
    /// (the segment that failed stays in the spool and is taken again).
    pub fn kind(&self) -> ErrorKind {
        match self {
            DrainError::Spool(error) => ErrorKind::of_io(error.kind()),
            DrainError::Write(error) => error.kind(),
        }
    }

    /// True when the same drain may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}

impl From<LakeError> for DrainError {
    fn from(error: LakeError) -> Self {
        DrainError::Write(WriteError::Lake(error))
    }
}

/// Processes every claimable segment of one stream once. Returns what was written and whether
/// any segment was found.
async fn drain_stream(
    reader: &SpoolReader,
    writer: &LakeWriter,
    failed_stream: bool,
    deadline: Option<Instant>,
    summary: &mut Summary,
) -> Result<bool, DrainError> {
    reader.recover_abandoned()?;
    let mut found = false;
    while let Some(segment) = reader.claim_next()? {
        found = true;
        let records = match segment.read() {
            Ok(records) => records,
            Err(error) => {
                let moved = segment.quarantine()?;
                tracing::error!(%error, to = %moved.display(), "quarantined a corrupt spool segment");
                metrics::counter!("clickstream_batcher_segments_quarantined_total").increment(1);
                continue;
            }
        };
        let written = if failed_stream {
            let failures: Vec<FailedEvent> = records
                .iter()
                .map(|r| {
                    serde_json::from_slice(r).unwrap_or_else(|e| undecodable(r, "collector dead-letter stream", &e))
                })
                .collect();
            writer.write(&format!("collector-{:020}", segment.id()), Vec::new(), failures).await?
        } else {
            let id = segment.id();
            writer.write_messages(&format!("spool-{id:020}"), records, move |_| format!("spool segment {id}")).await?
        };
        segment.mark_done()?;
        metrics::counter!("clickstream_batcher_segments_done_total").increment(1);
        summary.add(written);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    Ok(found)
}

/// Drains the spool rooted at `spool` into the lake, within `bounds`.
pub async fn drain(spool: &Path, writer: &LakeWriter, bounds: RunBounds) -> Result<Summary, DrainError> {
    let events = SpoolReader::open(stream_dir(spool, EVENTS_STREAM))?;
    let failed = SpoolReader::open(stream_dir(spool, FAILED_STREAM))?;
    let started = Instant::now();
    let deadline = bounds.max_runtime.map(|d| started + d);
    let mut summary = Summary::default();
    let mut last_work = Instant::now();
    loop {
        let found_events = drain_stream(&events, writer, false, deadline, &mut summary).await?;
        let found_failed = drain_stream(&failed, writer, true, deadline, &mut summary).await?;
        if found_events || found_failed {
            last_work = Instant::now();
        }
        if deadline.is_some_and(|d| Instant::now() >= d) || !bounds.follow {
            break;
        }
        if bounds.idle_exit.is_some_and(|idle| last_work.elapsed() >= idle) {
            break;
        }
        tokio::time::sleep(bounds.poll_interval).await;
    }
    Ok(summary)
}
