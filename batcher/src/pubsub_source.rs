//! Draining a Pub/Sub subscription into the lake.
//!
//! Streaming pull with flow control (outstanding messages and bytes bounded by the flush
//! bounds, so memory stays bounded whatever the backlog); the client library extends each
//! message's ack deadline while it is held, up to [`PubSubSourceConfig::max_lease`]. A flush is
//! written when it reaches its event count, its byte size or its age, and its messages are acked
//! only after every object holding them is durable. A crash before the ack means redelivery:
//! events may then appear in two files, and dbt's staging layer removes the duplicates by
//! `event_id` (the documented contract).
//!
//! Every run ends with the stream's shutdown, success or failure: the acks still in flight are
//! sent before the process exits, and every message it held but did not write is nacked, so
//! the next run gets it at once instead of after its ack deadline.

use std::time::{Duration, Instant};

use google_cloud_pubsub::client::Subscriber;
use google_cloud_pubsub::subscriber::MessageStream;
use google_cloud_pubsub::subscriber::ShutdownBehavior;
use google_cloud_pubsub::subscriber::handler::Handler;
use queue::pubsub::PubSubConfig;

use crate::lake::ErrorKind;
use crate::spool_source::RunBounds;
use crate::writer::{LakeWriter, Summary, WriteError};

/// Settings of the Pub/Sub source.
#[derive(Clone, Debug)]
pub struct PubSubSourceConfig {
    /// Project and emulator address (topics are not used here).
    pub pubsub: PubSubConfig,
    /// Subscription id.
    pub subscription: String,
    /// Flush once this many messages are held.
    pub flush_events: usize,
    /// Flush once this many bytes of messages are held.
    pub flush_bytes: usize,
    /// Flush at the latest this long after the first held message.
    pub flush_age: Duration,
    /// Longest a message is held (and its deadline extended) before Pub/Sub may redeliver it.
    pub max_lease: Duration,
    /// The ack deadline the stream asks for and each lease extension adds (10 s to 10 min).
    /// When the batcher dies, what it held is redelivered after at most this long.
    pub lease_extension: Duration,
}

/// Why draining the subscription stopped early. [`kind`](Self::kind) says whether a later run
/// may succeed; unacked messages are redelivered to it either way.
#[derive(Debug, thiserror::Error)]
pub enum PubSubDrainError {
    /// The subscriber client could not be built.
    #[error("cannot connect to Pub/Sub")]
    Connect(#[source] google_cloud_gax::client_builder::Error),
    /// The subscription's stream failed with an error the client library did not retry.
    #[error("pulling from {subscription} failed")]
    Pull {
        /// The subscription path.
        subscription: String,
        /// The client library's error.
        #[source]
        source: google_cloud_pubsub::Error,
    },
    /// A flush could not be written; its messages were not acked and will be redelivered.
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl PubSubDrainError {
    /// What a caller can do about it: transient means a later run may succeed.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PubSubDrainError::Connect(error) if error.is_transport() => ErrorKind::Transient,
            PubSubDrainError::Connect(_) => ErrorKind::Permanent,
            PubSubDrainError::Pull { source, .. } => pull_error_kind(source),
            PubSubDrainError::Write(error) => error.kind(),
        }
    }

    /// True when a later run may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}

/// The kind of a streaming-pull error, as the client library's own stream policy classifies
/// what it resumes: transport and I/O failures, and the gRPC codes that mean "try again".
fn pull_error_kind(error: &google_cloud_pubsub::Error) -> ErrorKind {
    use google_cloud_gax::error::rpc::Code;
    if error.is_transport() || error.is_io() || error.is_timeout() || error.is_transient_and_before_rpc() {
        return ErrorKind::Transient;
    }
    match error.status().map(|s| s.code) {
        Some(Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Internal | Code::Unavailable) => {
            ErrorKind::Transient
        }
        _ => ErrorKind::Permanent,
    }
}

/// Drains the subscription within `bounds`: stops after `idle_exit` without messages (a batch
/// job) or `max_runtime`, flushing what it holds first.
pub async fn drain(
    config: &PubSubSourceConfig,
    writer: &LakeWriter,
    bounds: RunBounds,
) -> Result<Summary, PubSubDrainError> {
    let mut builder = Subscriber::builder();
    if let Some(host) = &config.pubsub.emulator_host {
        let endpoint = if host.starts_with("http") { host.clone() } else { format!("http://{host}") };
        builder = builder
            .with_endpoint(endpoint)
            .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build());
    }
    let subscriber = builder.build().await.map_err(PubSubDrainError::Connect)?;
    let subscription = config.pubsub.subscription_path(&config.subscription);
    let mut stream = subscriber
        .subscribe(subscription.clone())
        .set_max_outstanding_messages(config.flush_events as i64)
        .set_max_outstanding_bytes(config.flush_bytes as i64)
        .set_max_lease(config.max_lease)
        .set_max_lease_extension(config.lease_extension)
        .set_shutdown_behavior(ShutdownBehavior::NackImmediately)
        .build();
    let shutdown = stream.shutdown_token();
    let result = pull(config, writer, bounds, &mut stream, subscription).await;
    if tokio::time::timeout(SHUTDOWN_GRACE, shutdown.shutdown()).await.is_err() {
        tracing::warn!(
            grace_seconds = SHUTDOWN_GRACE.as_secs(),
            "the subscriber did not finish sending acks and nacks in time; unacked messages come back after their ack deadline"
        );
    }
    result
}

/// How long a run waits at its end for the subscriber's last acks and nacks.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

async fn pull(
    config: &PubSubSourceConfig,
    writer: &LakeWriter,
    bounds: RunBounds,
    stream: &mut MessageStream,
    subscription: String,
) -> Result<Summary, PubSubDrainError> {
    let started = Instant::now();
    let idle_exit = bounds.idle_exit.unwrap_or(Duration::from_secs(30));
    let mut summary = Summary::default();
    let mut held: Vec<(Vec<u8>, String, Handler)> = Vec::new();
    let mut held_bytes = 0usize;
    let mut first_held: Option<Instant> = None;
    let mut last_message = Instant::now();
    loop {
        let runtime_left = bounds.max_runtime.map(|m| m.saturating_sub(started.elapsed()));
        if runtime_left == Some(Duration::ZERO) {
            break;
        }
        let flush_in = first_held.map(|t| config.flush_age.saturating_sub(t.elapsed()));
        let idle_in = if bounds.follow && bounds.idle_exit.is_none() {
            None
        } else {
            Some(idle_exit.saturating_sub(last_message.elapsed()))
        };
        let wait = [flush_in, idle_in, runtime_left].into_iter().flatten().min().unwrap_or(Duration::from_secs(60));
        match tokio::time::timeout(wait, stream.next()).await {
            Ok(Some(Ok((message, handler)))) => {
                last_message = Instant::now();
                first_held.get_or_insert_with(Instant::now);
                held_bytes += message.data.len();
                held.push((message.data.to_vec(), message.message_id.clone(), handler));
            }
            Ok(Some(Err(error))) => {
                flush(writer, &mut held, &mut summary).await?;
                return Err(PubSubDrainError::Pull { subscription, source: error });
            }
            Ok(None) => break,
            Err(_) => {}
        }
        let full = held.len() >= config.flush_events || held_bytes >= config.flush_bytes;
        let old = first_held.is_some_and(|t| t.elapsed() >= config.flush_age);
        if full || old {
            flush(writer, &mut held, &mut summary).await?;
            held_bytes = 0;
            first_held = None;
        }
        if idle_in.is_some_and(|_| last_message.elapsed() >= idle_exit) {
            break;
        }
    }
    flush(writer, &mut held, &mut summary).await?;
    Ok(summary)
}

async fn flush(
    writer: &LakeWriter,
    held: &mut Vec<(Vec<u8>, String, Handler)>,
    summary: &mut Summary,
) -> Result<(), WriteError> {
    if held.is_empty() {
        return Ok(());
    }
    let mut messages = Vec::with_capacity(held.len());
    let mut ids = Vec::with_capacity(held.len());
    let mut handlers = Vec::with_capacity(held.len());
    for (data, message_id, handler) in held.drain(..) {
        messages.push(data);
        ids.push(message_id);
        handlers.push(handler);
    }
    let name = format!("pubsub-{}", uuid::Uuid::now_v7().simple());
    let written = writer.write_messages(&name, messages, move |i| format!("pub/sub message {}", ids[i])).await?;
    for handler in handlers {
        handler.ack();
    }
    summary.add(written);
    Ok(())
}
