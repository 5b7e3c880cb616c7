variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project the alert policies are created in."
}

variable "subscription_name" {
  type        = string
  description = "The batcher's Pub/Sub subscription; its oldest unacknowledged message shows how far the lake is behind."
}

variable "dead_letter_subscription_name" {
  type        = string
  description = "The dead-letter topic's audit subscription; any message there is an event no batcher run could take."
}

variable "collector_service_name" {
  type        = string
  description = "Name of the collector's Cloud Run service."
}

variable "notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channel IDs (projects/P/notificationChannels/N) every policy notifies."
  default     = []
}

variable "notification_email" {
  type        = string
  description = "When set, an email notification channel is created for this address and added to every policy."
  default     = null
}

variable "backlog_age_threshold_seconds" {
  type        = number
  description = "Alert when the subscription's oldest unacknowledged message is older than this. The batcher runs hourly, so the default allows one missed run."
  default     = 7200

  validation {
    condition     = var.backlog_age_threshold_seconds >= 3600
    error_message = "backlog_age_threshold_seconds below one hour would fire between two healthy hourly runs."
  }
}

variable "collector_5xx_per_second" {
  type        = number
  description = "Alert when the collector answers more 5xx than this many per second, over five minutes. A 503 asks the client to retry (Pub/Sub unavailable, overloaded), so a few are survivable; a steady stream is not."
  default     = 1
}

variable "collector_p99_latency_ms" {
  type        = number
  description = "Alert when the collector's 99th percentile request latency exceeds this, over five minutes."
  default     = 2000
}
