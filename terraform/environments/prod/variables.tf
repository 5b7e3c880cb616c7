variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project to deploy into (must exist, with billing enabled)."
}

variable "region" {
  type        = string
  description = "Region for Cloud Run, Artifact Registry and (by default) the lake bucket."
  default     = "us-central1"
}

variable "bigquery_location" {
  type        = string
  description = "BigQuery location of the datasets (US, EU or a region). The lake bucket must be inside it (a US multi-region dataset loads from any US bucket)."
  default     = "US"
}

variable "lake_location" {
  type        = string
  description = "Location of the lake and import buckets; the Cloud Run region keeps batcher and loader traffic in-region."
  default     = "US-CENTRAL1"
}

variable "image_tag" {
  type        = string
  description = "Tag of the three images in Artifact Registry (for example the git commit SHA; tags are immutable)."
}

variable "labels" {
  type        = map(string)
  description = "Labels applied to every resource (cost attribution)."
  default = {
    app = "clickstream"
    env = "prod"
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the collector service and the events table from terraform destroy."
  default     = true
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for CMEK on buckets, topics, datasets and the registry; null uses Google-managed keys. The services' agents need encrypter/decrypter on it."
  default     = null
}

variable "artifact_repository_id" {
  type        = string
  description = "Artifact Registry Docker repository for the images."
  default     = "clickstream"
}

# --- Pub/Sub (names must match the binaries' defaults) -----------------------------------

variable "pubsub_topic_name" {
  type        = string
  description = "Events topic; clickstream-collector's --pubsub-topic default."
  default     = "clickstream-events"
}

variable "pubsub_dead_letter_topic_name" {
  type        = string
  description = "Dead-letter topic; the --pubsub-dead-letter-topic default of collector and batcher."
  default     = "clickstream-events-dead-letter"
}

variable "pubsub_subscription_name" {
  type        = string
  description = "Batcher subscription; clickstream-batcher run's --pubsub-subscription default."
  default     = "clickstream-events-batcher"
}

variable "pubsub_dead_letter_subscription_name" {
  type        = string
  description = "Subscription retaining dead letters for audit and replay."
  default     = "clickstream-events-dead-letter-audit"
}

variable "pubsub_max_delivery_attempts" {
  type        = number
  description = "Deliveries before a message is dead-lettered (5 to 100)."
  default     = 10
}

variable "pubsub_enable_exactly_once_delivery" {
  type        = bool
  description = "Exactly-once delivery on the batcher subscription (see docs/deploy.md: off, dbt deduplicates by event_id)."
  default     = false
}

variable "dead_letter_readers" {
  type        = list(string)
  description = "IAM members (for example group:data-oncall@example.com) allowed to pull the dead-letter audit subscription."
  default     = []
}

# --- Collector ----------------------------------------------------------------------------

variable "write_keys_secret_id" {
  type        = string
  description = "Secret Manager secret holding the collector's write keys (KEY=SOURCE,KEY=SOURCE); its value is added with gcloud, never through Terraform."
  default     = "clickstream-write-keys"
}

variable "collector_cors_origins" {
  type        = list(string)
  description = "Browser origins allowed to send events, for example [\"https://shop.example.com\"]."
  default     = []
}

variable "collector_min_instances" {
  type        = number
  description = "Warm collector instances (1 avoids cold starts; each idle instance is billed)."
  default     = 1
}

variable "collector_max_instances" {
  type        = number
  description = "Most collector instances: the cost ceiling under a spike."
  default     = 10
}

variable "collector_concurrency" {
  type        = number
  description = "Concurrent requests per collector instance."
  default     = 250
}

variable "collector_cpu" {
  type        = string
  description = "vCPU per collector instance."
  default     = "1"
}

variable "collector_memory" {
  type        = string
  description = "Memory per collector instance."
  default     = "512Mi"
}

variable "collector_ingress" {
  type        = string
  description = "Collector ingress: INGRESS_TRAFFIC_ALL, or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER behind an HTTPS load balancer."
  default     = "INGRESS_TRAFFIC_ALL"
}

variable "collector_forwarded_for_hops" {
  type        = number
  description = "X-Forwarded-For hops in front of the collector (1 on Cloud Run, 2 behind a load balancer)."
  default     = 1
}

variable "collector_rate_limit_per_second" {
  type        = number
  description = "Events per second per write key."
  default     = 10000
}

# --- Batch jobs -----------------------------------------------------------------------------

variable "batcher_max_runtime_seconds" {
  type        = number
  description = "The batcher job exits after this long even if messages keep coming (keep below the hourly schedule)."
  default     = 2700
}

variable "batcher_idle_exit_seconds" {
  type        = number
  description = "The batcher job exits after this long without messages."
  default     = 60
}

variable "batcher_flush_events" {
  type        = number
  description = "Write a Parquet file once this many events are buffered."
  default     = 500000
}

variable "batcher_flush_bytes" {
  type        = number
  description = "Write a Parquet file once this many bytes are buffered (mind batcher_memory)."
  default     = 268435456
}

variable "batcher_flush_age_seconds" {
  type        = number
  description = "Write a Parquet file at the latest this many seconds after its first event (below the subscription ack deadline)."
  default     = 300
}

variable "batcher_cpu" {
  type        = string
  description = "vCPU of the batcher, compactor and backfill jobs."
  default     = "1"
}

variable "batcher_memory" {
  type        = string
  description = "Memory of the batcher and compactor jobs; must hold the open batches (flush_bytes) plus Parquet encoding."
  default     = "2Gi"
}

variable "backfill_memory" {
  type        = string
  description = "Memory of the backfill job."
  default     = "4Gi"
}

variable "backfill_source_id" {
  type        = string
  description = "Default --source-id of backfilled events (clickstream-batcher backfill's own default; Kestra's backfill flow passes its input)."
  default     = "rees46-backfill"
}

# --- Lake -------------------------------------------------------------------------------------

variable "lake_bucket_name" {
  type        = string
  description = "Lake bucket name; null gives PROJECT_ID-clickstream-lake."
  default     = null
}

variable "imports_bucket_name" {
  type        = string
  description = "Bucket for CSV files to backfill; null gives PROJECT_ID-clickstream-imports."
  default     = null
}

variable "imports_delete_after_days" {
  type        = number
  description = "Delete uploaded CSV files this many days after upload; null keeps them."
  default     = 30
}

variable "lake_storage_class_transitions" {
  type = list(object({
    age_days     = number
    from_classes = list(string)
    to_class     = string
  }))
  description = "Lake lifecycle transitions to colder classes (retrieval fees apply when a backfill or reload reads old hours)."
  default = [
    { age_days = 30, from_classes = ["STANDARD"], to_class = "NEARLINE" },
    { age_days = 90, from_classes = ["NEARLINE"], to_class = "COLDLINE" },
    { age_days = 365, from_classes = ["COLDLINE"], to_class = "ARCHIVE" },
  ]
}

variable "lake_noncurrent_version_retention_days" {
  type        = number
  description = "Days replaced or deleted lake objects (for example files merged by compaction) stay recoverable."
  default     = 7
}

# --- Warehouse ------------------------------------------------------------------------------

variable "bigquery_raw_dataset_id" {
  type        = string
  description = "Raw dataset (loader --bigquery-dataset default)."
  default     = "clickstream_raw"
}

variable "bigquery_staging_dataset_id" {
  type        = string
  description = "Dataset for dbt staging and intermediate models."
  default     = "clickstream_staging"
}

variable "bigquery_marts_dataset_id" {
  type        = string
  description = "Dataset for dbt marts (Looker Studio)."
  default     = "clickstream_marts"
}

variable "bigquery_events_table_id" {
  type        = string
  description = "Raw events table (loader --bigquery-table default)."
  default     = "events"
}

variable "bigquery_partition_expiration_days" {
  type        = number
  description = "Retention of the raw events table: delete day partitions older than this many days (for example 1095 for three years); null keeps every day. The lake keeps the Parquet, so a reload can bring a day back within the lake's own lifecycle."
  default     = null
}

variable "loader_daily_job_budget" {
  type        = number
  description = "Load jobs the loader may submit on the raw table per 24 hours, retries and failures included. BigQuery caps a table's modifications at 1,500 a day (fixed); hourly operation uses about 30-60, and a backfill beyond the budget continues in the next runs."
  default     = 1000

  validation {
    condition     = var.loader_daily_job_budget >= 1 && var.loader_daily_job_budget <= 1400
    error_message = "loader_daily_job_budget must be between 1 and 1400 (BigQuery allows 1,500 table modifications a day, failed jobs included)."
  }
}

variable "compactor_day_file_max_bytes" {
  type        = number
  description = "A closed day whose lake files add up to at most this many bytes is merged into one file; busier days keep one file per hour. The compactor holds the day in memory (a few times this size): keep it well under batcher_memory."
  default     = 134217728
}

variable "bigquery_require_partition_filter" {
  type        = bool
  description = "Require a partition filter on queries of the raw events table. Off: dbt filters anyway and analysts should not be blocked; turn on to guard against accidental full scans."
  default     = false
}

variable "marts_readers" {
  type        = list(string)
  description = "IAM members (for example group:analysts@example.com) who read the marts in Looker Studio: dataViewer on the marts dataset and jobUser on the project."
  default     = []
}

variable "storage_data_access_logs" {
  type        = bool
  description = "Enable Cloud Storage Data Access audit logs in the project (object reads and writes; billed as Cloud Logging ingestion beyond the free allotment)."
  default     = true
}

variable "alert_notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channel IDs the pipeline's alert policies notify (projects/P/notificationChannels/N)."
  default     = []
}

variable "alert_email" {
  type        = string
  description = "When set, an email notification channel for this address is created and every alert policy notifies it."
  default     = null
}

variable "alert_backlog_age_seconds" {
  type        = number
  description = "Alert when the batcher's subscription holds a message older than this (at least one hour: the batcher runs hourly)."
  default     = 7200
}
