variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project that holds the topics and subscriptions."
}

variable "topic_name" {
  type        = string
  description = "Topic the collector publishes accepted events to (collector --pubsub-topic)."
  default     = "clickstream-events"
}

variable "dead_letter_topic_name" {
  type        = string
  description = "Dead-letter topic: rejected events from the collector and undeliverable messages from the subscription (--pubsub-dead-letter-topic)."
  default     = "clickstream-events-dead-letter"
}

variable "subscription_name" {
  type        = string
  description = "Subscription the batcher pulls (batcher --pubsub-subscription)."
  default     = "clickstream-events-batcher"
}

variable "dead_letter_subscription_name" {
  type        = string
  description = "Subscription on the dead-letter topic that retains dead letters for audit and replay."
  default     = "clickstream-events-dead-letter-audit"
}

variable "ack_deadline_seconds" {
  type        = number
  description = "Initial acknowledgement deadline of the batcher subscription (10 to 600 seconds)."
  default     = 600

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "subscription_message_retention_duration" {
  type        = string
  description = "How long unacknowledged messages are kept on the subscriptions (max 7 days): the time the batcher may be down without losing events."
  default     = "604800s"
}

variable "topic_message_retention_duration" {
  type        = string
  description = "Retention on the main topic itself, which lets a subscription seek back in time; null disables it (no extra storage cost)."
  default     = null
}

variable "dead_letter_topic_retention_duration" {
  type        = string
  description = "Retention on the dead-letter topic (max 31 days) so dead letters can be replayed with seek."
  default     = "2678400s"
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of a message before Pub/Sub forwards it to the dead-letter topic (5 to 100)."
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "retry_minimum_backoff" {
  type        = string
  description = "Minimum redelivery backoff after a negative acknowledgement or an expired deadline."
  default     = "10s"
}

variable "retry_maximum_backoff" {
  type        = string
  description = "Maximum redelivery backoff."
  default     = "600s"
}

variable "enable_exactly_once_delivery" {
  type        = bool
  description = "Pub/Sub exactly-once delivery on the batcher subscription. Off by default: the warehouse deduplicates by event_id, and exactly-once costs throughput and latency."
  default     = false
}

variable "publisher_members" {
  type        = list(string)
  description = "IAM members allowed to publish to the main topic (the collector)."
  default     = []
}

variable "dead_letter_publisher_members" {
  type        = list(string)
  description = "IAM members allowed to publish to the dead-letter topic (the collector's rejected events, the batcher's undecodable messages)."
  default     = []
}

variable "subscriber_members" {
  type        = list(string)
  description = "IAM members allowed to pull the batcher subscription (the batcher)."
  default     = []
}

variable "dead_letter_subscriber_members" {
  type        = list(string)
  description = "IAM members allowed to pull the dead-letter audit subscription (operators)."
  default     = []
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key for customer-managed encryption of both topics; null uses Google-managed keys."
  default     = null
}

variable "labels" {
  type        = map(string)
  description = "Labels applied to topics and subscriptions."
  default     = {}
}
