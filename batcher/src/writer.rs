//! Writing one flush to the lake: an hourly Parquet object per hour the events fall in, and a
//! JSON-lines dead-letter object for what could not be decoded — all durable before the caller
//! acknowledges its source.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use event_model::columns::StoredRow;
use event_model::{Event, FailedEvent};

use crate::lake::{ErrorKind, Lake, LakeError, hour_prefix};
use crate::parquet_io::{HourlyParquetWriter, ParquetError, ParquetSettings};

/// What a run did, printed as its one-line summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events written.
    pub events: u64,
    /// Objects written (Parquet and dead-letter).
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Duplicates removed by event_id.
    pub duplicates: u64,
    /// Messages sent to the dead-letter objects.
    pub dead_lettered: u64,
}

impl Summary {
    /// Adds another summary's counts.
    pub fn add(&mut self, other: Summary) {
        self.events += other.events;
        self.files += other.files;
        self.bytes += other.bytes;
        self.duplicates += other.duplicates;
        self.dead_lettered += other.dead_lettered;
    }

    /// The one-line summary of a run.
    pub fn line(&self, command: &str, started: Instant) -> String {
        format!(
            "{command}: {} events, {} files, {} bytes, {} duplicates removed, {} dead-lettered, {:.1} s",
            self.events,
            self.files,
            self.bytes,
            self.duplicates,
            self.dead_lettered,
            started.elapsed().as_secs_f64()
        )
    }
}

/// Why a flush could not be written; the source must not be acknowledged.
/// [`kind`](Self::kind) says whether the same flush may succeed later.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Encoding failed.
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    /// Storing failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The dead-letter sink did not take the undecodable messages.
    #[error("publishing {count} dead letters failed")]
    DeadLetter {
        /// Dead letters in the flush.
        count: usize,
        /// The sink's error.
        #[source]
        source: queue::SinkError,
    },
    /// The encoding task panicked or was cancelled.
    #[error("the Parquet encoder task failed")]
    Encoder(#[source] tokio::task::JoinError),
}

impl WriteError {
    /// What a caller can do about it: a transient failure may be retried (the source nacked,
    /// the job re-run); a permanent one will fail the same way again.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WriteError::Lake(error) => error.kind(),
            WriteError::DeadLetter { source, .. } if source.is_retryable() => ErrorKind::Transient,
            WriteError::Parquet(_) | WriteError::DeadLetter { .. } | WriteError::Encoder(_) => ErrorKind::Permanent,
        }
    }

    /// True when the same flush may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}

/// Writes flushes to the lake.
#[derive(Clone)]
pub struct LakeWriter {
    lake: Arc<dyn Lake>,
    settings: ParquetSettings,
    dead_letters: Option<Arc<dyn queue::EventSink>>,
}

impl LakeWriter {
    /// A writer to `lake` with `settings`; dead letters go to the lake's `dead-letter/` folder.
    pub fn new(lake: Arc<dyn Lake>, settings: ParquetSettings) -> Self {
        Self { lake, settings, dead_letters: None }
    }

    /// Sends dead letters to `sink`'s dead-letter stream (e.g. the Pub/Sub dead-letter topic)
    /// instead of the lake.
    pub fn with_dead_letter_sink(mut self, sink: Arc<dyn queue::EventSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// The lake.
    pub fn lake(&self) -> &Arc<dyn Lake> {
        &self.lake
    }

    /// Writes `events` as `<name>.parquet` in each hour folder they fall in (deduplicated by
    /// event_id per file) and `failed` as `dead-letter/dt=<today>/<name>.jsonl`. The same name
    /// and input always give the same objects, so a retried flush overwrites.
    pub async fn write(&self, name: &str, events: Vec<Event>, failed: Vec<FailedEvent>) -> Result<Summary, WriteError> {
        self.encode_and_store(name, move |writer| {
            for event in &events {
                writer.push(event)?;
            }
            Ok(failed)
        })
        .await
    }

    /// Like [`write`](Self::write) for queue messages: each is decoded straight into Parquet
    /// columns ([`StoredRow::parse`]); one that does not decode is dead-lettered with the reason
    /// and `origin(its index)`, which names where it came from.
    pub async fn write_messages<M, O>(&self, name: &str, messages: Vec<M>, origin: O) -> Result<Summary, WriteError>
    where
        M: AsRef<[u8]> + Send + 'static,
        O: Fn(usize) -> String + Send + 'static,
    {
        self.encode_and_store(name, move |writer| {
            let mut failed = Vec::new();
            for (index, message) in messages.iter().enumerate() {
                match StoredRow::parse_with(message.as_ref(), |row| writer.push_row(row)) {
                    Ok(pushed) => pushed?,
                    Err(error) => failed.push(undecodable(message.as_ref(), &origin(index), &error)),
                }
            }
            Ok(failed)
        })
        .await
    }

    async fn encode_and_store<F>(&self, name: &str, fill: F) -> Result<Summary, WriteError>
    where
        F: FnOnce(&mut HourlyParquetWriter) -> Result<Vec<FailedEvent>, ParquetError> + Send + 'static,
    {
        let mut summary = Summary::default();
        let settings = self.settings;
        let (files, duplicates, failed) = tokio::task::spawn_blocking(move || {
            let mut writer = HourlyParquetWriter::new(settings);
            let failed = fill(&mut writer)?;
            let (files, duplicates) = writer.finish()?;
            Ok::<_, ParquetError>((files, duplicates, failed))
        })
        .await
        .map_err(WriteError::Encoder)??;
        summary.duplicates = duplicates as u64;
        for file in files {
            summary.bytes += file.data.len() as u64;
            summary.events += file.rows as u64;
            summary.files += 1;
            self.lake.put(&format!("{}{name}.parquet", hour_prefix(file.hour)), file.data).await?;
        }
        if !failed.is_empty()
            && let Some(sink) = &self.dead_letters
        {
            sink.publish(&[], &failed)
                .await
                .map_err(|source| WriteError::DeadLetter { count: failed.len(), source })?;
            summary.dead_lettered = failed.len() as u64;
        } else if !failed.is_empty() {
            let mut lines = Vec::new();
            for record in &failed {
                lines.extend_from_slice(&record.to_json_bytes());
                lines.push(b'\n');
            }
            let path = format!("dead-letter/dt={}/{name}.jsonl", Utc::now().format("%Y-%m-%d"));
            summary.bytes += lines.len() as u64;
            summary.files += 1;
            summary.dead_lettered = failed.len() as u64;
            self.lake.put(&path, Bytes::from(lines)).await?;
        }
        metrics::counter!("clickstream_batcher_events_written_total").increment(summary.events);
        metrics::counter!("clickstream_batcher_files_written_total").increment(summary.files);
        metrics::counter!("clickstream_batcher_bytes_written_total").increment(summary.bytes);
        metrics::counter!("clickstream_batcher_duplicates_removed_total").increment(summary.duplicates);
        metrics::counter!("clickstream_batcher_dead_lettered_total").increment(summary.dead_lettered);
        Ok(summary)
    }
}

/// The dead-letter record of a message that is not what its stream should hold.
pub fn undecodable(payload: &[u8], origin: &str, error: &dyn std::fmt::Display) -> FailedEvent {
    FailedEvent::new(
        event_model::failed::FailureStage::Batcher,
        None,
        None,
        vec![event_model::FieldError::new("message", "undecodable", format!("{origin}: {error}"))],
        &String::from_utf8_lossy(payload),
    )
}
