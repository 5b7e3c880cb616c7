output "name" {
  description = "Name of the Cloud Run service."
  value       = google_cloud_run_v2_service.this.name
}

output "uri" {
  description = "HTTPS URL of the collector; trackers send to URI/v1/events."
  value       = google_cloud_run_v2_service.this.uri
}
