output "topic_name" {
  description = "Name of the events topic."
  value       = google_pubsub_topic.events.name
}

output "topic_id" {
  description = "Full resource ID of the events topic."
  value       = google_pubsub_topic.events.id
}

output "dead_letter_topic_name" {
  description = "Name of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.name
}

output "subscription_name" {
  description = "Name of the batcher subscription."
  value       = google_pubsub_subscription.batcher.name
}

output "dead_letter_subscription_name" {
  description = "Name of the dead-letter audit subscription."
  value       = google_pubsub_subscription.dead_letter_audit.name
}
