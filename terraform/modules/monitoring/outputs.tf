output "alert_policy_ids" {
  description = "IDs of the alert policies, by purpose."
  value = {
    backlog_age       = google_monitoring_alert_policy.backlog_age.id
    dead_letters      = google_monitoring_alert_policy.dead_letters.id
    collector_errors  = google_monitoring_alert_policy.collector_errors.id
    collector_latency = google_monitoring_alert_policy.collector_latency.id
  }
}

output "notification_channels" {
  description = "The notification channels every policy notifies."
  value       = local.channels
}
