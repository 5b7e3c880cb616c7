# The event queue: the collector publishes to the main topic (and rejected events to the
# dead-letter topic); the batcher pulls the main subscription. Messages the batcher fails
# to acknowledge max_delivery_attempts times are forwarded by Pub/Sub to the dead-letter
# topic, whose audit subscription retains them for inspection and replay.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Pub/Sub's service agent forwards dead letters: it must be able to publish to the
  # dead-letter topic and to acknowledge on the source subscription.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "events" {
  project                    = var.project_id
  name                       = var.topic_name
  labels                     = var.labels
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.topic_message_retention_duration
}

resource "google_pubsub_topic" "dead_letter" {
  project = var.project_id
  name    = var.dead_letter_topic_name
  labels  = var.labels
  # Topic-level retention keeps dead letters replayable (seek) even after the audit
  # subscription acknowledged them.
  kms_key_name               = var.kms_key_name
  message_retention_duration = var.dead_letter_topic_retention_duration
}

resource "google_pubsub_subscription" "batcher" {
  project = var.project_id
  name    = var.subscription_name
  topic   = google_pubsub_topic.events.id
  labels  = var.labels

  # The batcher acknowledges a message only after the Parquet file holding it is written;
  # the client library extends leases while a batch is open, this is the initial deadline.
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.subscription_message_retention_duration
  retain_acked_messages      = false

  # Exactly-once delivery is off by default: duplicates are removed downstream by event_id
  # (dbt staging), and exactly-once lowers throughput and does not cover a crash between
  # writing a file and acknowledging. See docs/deploy.md.
  enable_exactly_once_delivery = var.enable_exactly_once_delivery
  enable_message_ordering      = false

  expiration_policy {
    ttl = "" # never expire, even when the batcher has not pulled for 31 days
  }

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }
}

resource "google_pubsub_subscription" "dead_letter_audit" {
  project = var.project_id
  name    = var.dead_letter_subscription_name
  topic   = google_pubsub_topic.dead_letter.id
  labels  = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = var.subscription_message_retention_duration
  retain_acked_messages      = true

  expiration_policy {
    ttl = ""
  }
}

# --- IAM the dead-letter policy needs (Pub/Sub service agent) ---------------------------

resource "google_pubsub_topic_iam_member" "dead_letter_agent_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_agent_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.batcher.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# --- Component access ------------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "events_publishers" {
  for_each = toset(var.publisher_members)

  project = var.project_id
  topic   = google_pubsub_topic.events.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

resource "google_pubsub_topic_iam_member" "dead_letter_publishers" {
  for_each = toset(var.dead_letter_publisher_members)

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

resource "google_pubsub_subscription_iam_member" "batcher_subscribers" {
  for_each = toset(var.subscriber_members)

  project      = var.project_id
  subscription = google_pubsub_subscription.batcher.name
  role         = "roles/pubsub.subscriber"
  member       = each.value
}

resource "google_pubsub_subscription_iam_member" "dead_letter_audit_subscribers" {
  for_each = toset(var.dead_letter_subscriber_members)

  project      = var.project_id
  subscription = google_pubsub_subscription.dead_letter_audit.name
  role         = "roles/pubsub.subscriber"
  member       = each.value
}
