//! Google Cloud Pub/Sub: the production queue.
//!
//! Uses `google-cloud-pubsub`, Google's official client (the crate the design names). Its
//! [`Publisher`] batches by message count, bytes and delay in the background; we await the
//! publish acknowledgement of every message before reporting success, so a 2xx from the
//! collector means Pub/Sub has stored the event. Ordering is not required and not requested.
//!
//! The emulator: when `PUBSUB_EMULATOR_HOST` is set (as Google's own clients honour it), the
//! clients talk plain HTTP/2 to that address with anonymous credentials. The official crate does
//! not read the variable itself, so [`PubSubConfig::from_env_emulator`] does.
//!
//! Each message's data is the event's JSON; attributes carry `event_id`, `event_type`,
//! `source_id` and `schema_version` so subscribers can filter without decoding. Rejected events
//! go to the dead-letter topic with `failure_stage` and `failure_reason` attributes; the same topic
//! receives the subscription's undeliverable messages (its dead-letter policy).

use std::time::Duration;

use async_trait::async_trait;
use event_model::FailedEvent;
use event_model::event::EventView;
use google_cloud_gax::error::rpc::Code;
use google_cloud_pubsub::client::{Publisher, SubscriptionAdmin, TopicAdmin};
use google_cloud_pubsub::model::{DeadLetterPolicy, Message};

use crate::{EventSink, QueueDepth, SinkError};

/// Settings of the Pub/Sub sink.
#[derive(Clone, Debug)]
pub struct PubSubConfig {
    /// The Google Cloud project holding the topics.
    pub project_id: String,
    /// Topic id of accepted events.
    pub topic: String,
    /// Topic id of rejected and undeliverable events.
    pub dead_letter_topic: String,
    /// `host:port` of a Pub/Sub emulator; `None` for the real service.
    pub emulator_host: Option<String>,
    /// Send a batch once it holds this many messages.
    pub batch_max_messages: u32,
    /// Send a batch once it holds this many bytes.
    pub batch_max_bytes: u32,
    /// Send a batch at the latest this long after its first message.
    pub batch_max_delay: Duration,
    /// Give up on a publish (and answer 503) after this long.
    pub publish_timeout: Duration,
}

impl PubSubConfig {
    /// Defaults for `project_id` and `topic`, with the emulator address from
    /// `PUBSUB_EMULATOR_HOST` when set.
    pub fn new(project_id: &str, topic: &str, dead_letter_topic: &str) -> Self {
        Self {
            project_id: project_id.to_owned(),
            topic: topic.to_owned(),
            dead_letter_topic: dead_letter_topic.to_owned(),
            emulator_host: Self::from_env_emulator(),
            batch_max_messages: 500,
            batch_max_bytes: 1024 * 1024,
            batch_max_delay: Duration::from_millis(5),
            publish_timeout: Duration::from_secs(10),
        }
    }

    /// The emulator address from `PUBSUB_EMULATOR_HOST`, if set and not empty.
    pub fn from_env_emulator() -> Option<String> {
        std::env::var("PUBSUB_EMULATOR_HOST").ok().filter(|host| !host.trim().is_empty())
    }

    /// `projects/{project}/topics/{topic}`.
    pub fn topic_path(&self, topic: &str) -> String {
        format!("projects/{}/topics/{}", self.project_id, topic)
    }

    /// `projects/{project}/subscriptions/{subscription}`.
    pub fn subscription_path(&self, subscription: &str) -> String {
        format!("projects/{}/subscriptions/{}", self.project_id, subscription)
    }

    fn endpoint(&self) -> Option<String> {
        self.emulator_host.as_ref().map(|host| {
            if host.starts_with("http://") || host.starts_with("https://") {
                host.clone()
            } else {
                format!("http://{host}")
            }
        })
    }
}

fn anonymous() -> google_cloud_auth::credentials::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}

/// Applies the emulator endpoint and anonymous credentials to any of the crate's builders.
macro_rules! for_target {
    ($builder:expr, $config:expr) => {{
        let builder = $builder;
        match $config.endpoint() {
            Some(endpoint) => builder.with_endpoint(endpoint).with_credentials(anonymous()),
            None => builder,
        }
    }};
}

fn unavailable(context: &str, error: impl std::fmt::Display) -> SinkError {
    SinkError::Unavailable(format!("{context}: {error}"))
}

/// Publishes accepted events and rejected ones to their topics.
pub struct PubSubSink {
    config: PubSubConfig,
    events: Publisher,
    dead_letters: Publisher,
    admin: TopicAdmin,
}

impl PubSubSink {
    /// Connects the publishers. Does not check that the topics exist; [`EventSink::check_ready`]
    /// does.
    pub async fn connect(config: PubSubConfig) -> Result<Self, SinkError> {
        let publisher = |topic: &str| {
            for_target!(Publisher::builder(config.topic_path(topic)), config)
                .set_message_count_threshold(config.batch_max_messages)
                .set_byte_threshold(config.batch_max_bytes)
                .set_delay_threshold(config.batch_max_delay)
                .build()
        };
        let events = publisher(&config.topic).await.map_err(|e| unavailable("publisher", e))?;
        let dead_letters = publisher(&config.dead_letter_topic).await.map_err(|e| unavailable("publisher", e))?;
        let admin =
            for_target!(TopicAdmin::builder(), config).build().await.map_err(|e| unavailable("topic admin", e))?;
        Ok(Self { config, events, dead_letters, admin })
    }

    async fn publish_all(&self, publisher: &Publisher, messages: Vec<Message>) -> Result<(), SinkError> {
        if messages.is_empty() {
            return Ok(());
        }
        let pending: Vec<_> = messages.into_iter().map(|m| publisher.publish(m)).collect();
        let results = tokio::time::timeout(self.config.publish_timeout, futures::future::join_all(pending))
            .await
            .map_err(|_| {
                SinkError::Unavailable(format!(
                    "Pub/Sub did not acknowledge the publish within {:?}",
                    self.config.publish_timeout
                ))
            })?;
        for result in results {
            result.map_err(|e| unavailable("publish", e))?;
        }
        Ok(())
    }
}

/// The Pub/Sub message for an accepted event.
pub fn event_message(event: &EventView<'_>) -> Message {
    Message::new().set_data(event.to_json_bytes()).set_attributes([
        ("event_id", event.event_id.to_string()),
        ("event_type", event.event_type.as_str().to_owned()),
        ("source_id", event.source_id.to_string()),
        ("schema_version", event_model::SCHEMA_VERSION.to_string()),
    ])
}

/// The Pub/Sub message for a rejected event.
pub fn failed_message(failed: &FailedEvent) -> Message {
    let stage = serde_json::to_value(failed.stage).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let reason = failed.errors.first().map(|e| e.code.clone()).unwrap_or_default();
    Message::new().set_data(failed.to_json_bytes()).set_attributes([
        ("failure_stage", stage),
        ("failure_reason", reason),
        ("failure_id", failed.failure_id.clone()),
    ])
}

#[async_trait]
impl EventSink for PubSubSink {
    fn kind(&self) -> &'static str {
        "pubsub"
    }

    async fn publish(&self, events: &[EventView<'_>], failed: &[FailedEvent]) -> Result<(), SinkError> {
        let events = self.publish_all(&self.events, events.iter().map(event_message).collect());
        let failed = self.publish_all(&self.dead_letters, failed.iter().map(failed_message).collect());
        let (events, failed) = futures::join!(events, failed);
        events.and(failed)
    }

    async fn check_ready(&self) -> Result<(), SinkError> {
        for topic in [&self.config.topic, &self.config.dead_letter_topic] {
            let request = self.admin.get_topic().set_topic(self.config.topic_path(topic)).send();
            tokio::time::timeout(Duration::from_secs(5), request)
                .await
                .map_err(|_| SinkError::Unavailable("Pub/Sub did not answer within 5s".into()))?
                .map_err(|e| unavailable(&format!("topic {topic}"), e))?;
        }
        Ok(())
    }

    fn depth(&self) -> Option<QueueDepth> {
        None
    }

    async fn shutdown(&self) {
        self.events.flush().await;
        self.dead_letters.flush().await;
    }
}

/// Creates the topics and subscriptions the pipeline needs, when missing. For local set-ups and
/// tests; production topology is Terraform's.
pub struct PubSubAdmin {
    config: PubSubConfig,
    topics: TopicAdmin,
    subscriptions: SubscriptionAdmin,
}

impl PubSubAdmin {
    /// Connects the admin clients.
    pub async fn connect(config: PubSubConfig) -> Result<Self, SinkError> {
        let topics =
            for_target!(TopicAdmin::builder(), config).build().await.map_err(|e| unavailable("topic admin", e))?;
        let subscriptions = for_target!(SubscriptionAdmin::builder(), config)
            .build()
            .await
            .map_err(|e| unavailable("subscription admin", e))?;
        Ok(Self { config, topics, subscriptions })
    }

    /// Creates topic `topic` unless it exists.
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), SinkError> {
        let result = self.topics.create_topic().set_name(self.config.topic_path(topic)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.status().is_some_and(|s| s.code == Code::AlreadyExists) => Ok(()),
            Err(error) => Err(unavailable(&format!("create topic {topic}"), error)),
        }
    }

    /// Creates subscription `subscription` on `topic` unless it exists, with a dead-letter policy
    /// to `dead_letter_topic` after `max_delivery_attempts`.
    pub async fn ensure_subscription(
        &self,
        subscription: &str,
        topic: &str,
        ack_deadline_seconds: i32,
        dead_letter_topic: Option<&str>,
        max_delivery_attempts: i32,
    ) -> Result<(), SinkError> {
        let mut request = self
            .subscriptions
            .create_subscription()
            .set_name(self.config.subscription_path(subscription))
            .set_topic(self.config.topic_path(topic))
            .set_ack_deadline_seconds(ack_deadline_seconds);
        if let Some(dead_letter_topic) = dead_letter_topic {
            request = request.set_dead_letter_policy(
                DeadLetterPolicy::new()
                    .set_dead_letter_topic(self.config.topic_path(dead_letter_topic))
                    .set_max_delivery_attempts(max_delivery_attempts),
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) if error.status().is_some_and(|s| s.code == Code::AlreadyExists) => Ok(()),
            Err(error) => Err(unavailable(&format!("create subscription {subscription}"), error)),
        }
    }
}
