output "raw_dataset_id" {
  description = "Dataset the loader writes."
  value       = google_bigquery_dataset.this["raw"].dataset_id
}

output "staging_dataset_id" {
  description = "Dataset for dbt staging and intermediate models."
  value       = google_bigquery_dataset.this["staging"].dataset_id
}

output "marts_dataset_id" {
  description = "Dataset for dbt marts (Looker Studio data sources)."
  value       = google_bigquery_dataset.this["marts"].dataset_id
}

output "events_table_id" {
  description = "Raw events table ID."
  value       = google_bigquery_table.events.table_id
}

output "events_table_fqn" {
  description = "Fully qualified events table, PROJECT.DATASET.TABLE."
  value       = "${var.project_id}.${google_bigquery_dataset.this["raw"].dataset_id}.${google_bigquery_table.events.table_id}"
}

output "location" {
  description = "BigQuery location of the datasets."
  value       = var.location
}
