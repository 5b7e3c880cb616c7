output "project_id" {
  description = "Project the pipeline runs in."
  value       = var.project_id
}

output "region" {
  description = "Cloud Run region."
  value       = var.region
}

output "collector_url" {
  description = "Collector base URL; the storefront SDK's endpoint."
  value       = module.collector.uri
}

output "collector_events_endpoint" {
  description = "URL trackers POST events to."
  value       = "${module.collector.uri}/v1/events"
}

output "write_keys_secret_id" {
  description = "Secret to add write keys to: gcloud secrets versions add SECRET --data-file=-."
  value       = module.write_keys_secret.secret_id
}

output "artifact_registry_url" {
  description = "Registry prefix the images are pushed to."
  value       = module.artifact_registry.repository_url
}

output "images" {
  description = "Image references the service and jobs run."
  value       = local.images
}

output "pubsub_topic" {
  description = "Events topic."
  value       = module.pubsub.topic_name
}

output "pubsub_dead_letter_topic" {
  description = "Dead-letter topic."
  value       = module.pubsub.dead_letter_topic_name
}

output "pubsub_subscription" {
  description = "Batcher subscription."
  value       = module.pubsub.subscription_name
}

output "pubsub_dead_letter_subscription" {
  description = "Dead-letter audit subscription."
  value       = module.pubsub.dead_letter_subscription_name
}

output "lake_url" {
  description = "Lake URL for --lake (gs://BUCKET)."
  value       = module.lake_bucket.url
}

output "imports_bucket" {
  description = "Bucket to upload backfill CSV files to (seen by the backfill job at /mnt/imports)."
  value       = module.imports_bucket.name
}

output "bigquery_location" {
  description = "BigQuery location (dbt CLICKSTREAM_BQ_LOCATION, loader --bigquery-location)."
  value       = module.bigquery.location
}

output "bigquery_raw_table" {
  description = "Raw events table, PROJECT.DATASET.TABLE."
  value       = module.bigquery.events_table_fqn
}

output "bigquery_datasets" {
  description = "Datasets by layer."
  value = {
    raw     = module.bigquery.raw_dataset_id
    staging = module.bigquery.staging_dataset_id
    marts   = module.bigquery.marts_dataset_id
  }
}

output "job_names" {
  description = "Cloud Run job per component (Kestra executes these)."
  value       = module.jobs.job_names
}

output "service_accounts" {
  description = "Service account e-mail per component."
  value       = module.service_accounts.emails
}

output "kestra_kv" {
  description = "Key-value pairs to set in Kestra's clickstream.prod namespace (see kestra/README.md)."
  value = {
    GCP_PROJECT_ID            = var.project_id
    GCP_REGION                = var.region
    CLICKSTREAM_LAKE          = module.lake_bucket.url
    CLICKSTREAM_BQ_LOCATION   = module.bigquery.location
    CLICKSTREAM_MARTS_DATASET = module.bigquery.marts_dataset_id
  }
}

output "dbt_env" {
  description = "Environment for dbt build --target bigquery (dbt/profiles.yml variables)."
  value = {
    CLICKSTREAM_DBT_TARGET  = "bigquery"
    CLICKSTREAM_BQ_PROJECT  = var.project_id
    CLICKSTREAM_BQ_LOCATION = module.bigquery.location
    CLICKSTREAM_DBT_SCHEMA  = module.bigquery.marts_dataset_id
    CLICKSTREAM_RAW_SCHEMA  = module.bigquery.raw_dataset_id
  }
}

output "looker_studio_command" {
  description = "Command printing the Looker Studio Linking API URL for a report on the marts (docs/looker-studio.md)."
  value       = "python3 deploy/looker_studio_url.py --project ${var.project_id} --dataset ${module.bigquery.marts_dataset_id}"
}

output "alert_policy_ids" {
  description = "The pipeline's Cloud Monitoring alert policies, by purpose."
  value       = module.monitoring.alert_policy_ids
}
