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
use queue::spool::{ClaimedSegment, EVENTS_STREAM, FAILED_STREAM, SpoolReader, stream_dir};

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
    /// Segments encoded at once, each on its own thread (a segment's events are decoded and
    /// encoded by one thread; its memory is held per segment in progress).
    pub parallel_segments: usize,
}

impl Default for RunBounds {
    /// One segment at a time per CPU, at most 4.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        Self {
            follow: false,
            idle_exit: None,
            max_runtime: None,
            poll_interval: Duration::from_millis(500),
            parallel_segments: cpus.clamp(1, 4),
        }
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

/// Processes every claimable segment of one stream once, `parallel` segments at a time.
/// Returns whether any segment was found. A segment is marked done only once its files are
/// written; when one of the segments in progress fails, the others that were written are
/// marked done and the failed one stays in the spool.
async fn drain_stream(
    reader: &SpoolReader,
    writer: &LakeWriter,
    failed_stream: bool,
    deadline: Option<Instant>,
    parallel: usize,
    summary: &mut Summary,
) -> Result<bool, DrainError> {
    reader.recover_abandoned()?;
    let mut found = false;
    loop {
        let mut claimed = Vec::new();
        while claimed.len() < parallel.max(1) {
            let Some(segment) = reader.claim_next()? else { break };
            found = true;
            match segment.read() {
                Ok(records) => claimed.push((segment, records)),
                Err(error) => {
                    let moved = segment.quarantine()?;
                    tracing::error!(%error, to = %moved.display(), "quarantined a corrupt spool segment");
                    metrics::counter!("clickstream_batcher_segments_quarantined_total").increment(1);
                }
            }
        }
        if claimed.is_empty() {
            return Ok(found);
        }
        let (segments, records): (Vec<ClaimedSegment>, Vec<Vec<Vec<u8>>>) = claimed.into_iter().unzip();
        let writes = segments.iter().zip(records).map(|(segment, records)| {
            let id = segment.id();
            async move {
                if failed_stream {
                    let failures: Vec<FailedEvent> = records
                        .iter()
                        .map(|r| {
                            serde_json::from_slice(r)
                                .unwrap_or_else(|e| undecodable(r, "collector dead-letter stream", &e))
                        })
                        .collect();
                    writer.write(&format!("collector-{id:020}"), Vec::new(), failures).await
                } else {
                    writer
                        .write_messages(&format!("spool-{id:020}"), records, move |_| format!("spool segment {id}"))
                        .await
                }
            }
        });
        let results = futures::future::join_all(writes).await;
        let mut first_error = None;
        for (segment, result) in segments.into_iter().zip(results) {
            match result {
                Ok(written) => {
                    segment.mark_done()?;
                    metrics::counter!("clickstream_batcher_segments_done_total").increment(1);
                    summary.add(written);
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error.into());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(found);
        }
    }
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
        let parallel = bounds.parallel_segments;
        let found_events = drain_stream(&events, writer, false, deadline, parallel, &mut summary).await?;
        let found_failed = drain_stream(&failed, writer, true, deadline, parallel, &mut summary).await?;
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
