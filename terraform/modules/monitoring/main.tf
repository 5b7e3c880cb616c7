# Alerts for what the pipeline cannot report by itself: a lake falling behind Pub/Sub, events
# parked on the dead-letter topic, and a collector answering errors or slowly. Failed batch,
# load and dbt runs are reported by Kestra's flows (kestra/flows/*.yml, `errors:`).
locals {
  channels = concat(
    var.notification_channels,
    google_monitoring_notification_channel.email[*].id,
  )
}

resource "google_monitoring_notification_channel" "email" {
  count = var.notification_email == null ? 0 : 1

  project      = var.project_id
  display_name = "clickstream alerts (${var.notification_email})"
  type         = "email"
  labels = {
    email_address = var.notification_email
  }
}

resource "google_monitoring_alert_policy" "backlog_age" {
  project               = var.project_id
  display_name          = "clickstream: lake behind Pub/Sub"
  combiner              = "OR"
  notification_channels = local.channels

  conditions {
    display_name = "oldest unacked message on ${var.subscription_name} older than ${var.backlog_age_threshold_seconds} s"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${var.subscription_name}\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.backlog_age_threshold_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The batcher has not drained `${var.subscription_name}` for over ${var.backlog_age_threshold_seconds} s. Check the latest `hourly-batch-load` execution in Kestra and the `clickstream-batcher` job's logs; a run that exited 75 met a GCS outage and the next run continues. Messages are kept for the subscription's retention, so nothing is lost while it is shorter than that. See docs/operations.md."
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "clickstream: events forwarded to the dead-letter topic"
  combiner              = "OR"
  notification_channels = local.channels

  # Counted on the batcher's subscription: the messages its dead-letter policy forwarded. The
  # collector's own rejections are published to the same topic and are not counted here.
  conditions {
    display_name = "messages of ${var.subscription_name} forwarded to the dead-letter topic"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${var.subscription_name}\" AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Pub/Sub forwarded messages that no batcher run acknowledged within the subscription's delivery attempts. Read them from `${var.dead_letter_subscription_name}` (it keeps them, acknowledged or not, for its retention); the batcher's logs name why each failed. See docs/operations.md."
  }
}

resource "google_monitoring_alert_policy" "collector_errors" {
  project               = var.project_id
  display_name          = "clickstream: collector answering 5xx"
  combiner              = "OR"
  notification_channels = local.channels

  conditions {
    display_name = "${var.collector_service_name} 5xx above ${var.collector_5xx_per_second}/s"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${var.collector_service_name}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.collector_5xx_per_second
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The collector is refusing events with 5xx. A 503 with Retry-After means Pub/Sub is unavailable or the instance is overloaded (clients retry, so events are delayed, not lost, while their retries last); check Pub/Sub's status and the service's `clickstream_collector_publish_failures_total`. See docs/operations.md."
  }
}

resource "google_monitoring_alert_policy" "collector_latency" {
  project               = var.project_id
  display_name          = "clickstream: collector slow"
  combiner              = "OR"
  notification_channels = local.channels

  conditions {
    display_name = "${var.collector_service_name} p99 latency above ${var.collector_p99_latency_ms} ms"
    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${var.collector_service_name}\" AND metric.type = \"run.googleapis.com/request_latencies\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.collector_p99_latency_ms
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.labels.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The collector's 99th percentile latency is high. Each 2xx waits for Pub/Sub to acknowledge the publish, so slow publishes show here first (`clickstream_collector_publish_duration_seconds`); otherwise the service may need more instances (`collector_max_instances`). See docs/operations.md."
  }
}
