variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project that holds the datasets."
}

variable "location" {
  type        = string
  description = "BigQuery location of every dataset (for example US, EU or a region). dbt and the loader must use the same location."
}

variable "raw_dataset_id" {
  type        = string
  description = "Dataset the loader writes (loader --bigquery-dataset)."
  default     = "clickstream_raw"
}

variable "staging_dataset_id" {
  type        = string
  description = "Dataset for dbt staging and intermediate models."
  default     = "clickstream_staging"
}

variable "marts_dataset_id" {
  type        = string
  description = "Dataset for dbt marts, read by Looker Studio."
  default     = "clickstream_marts"
}

variable "events_table_id" {
  type        = string
  description = "Raw events table (loader --bigquery-table)."
  default     = "events"
}

variable "events_schema_json" {
  type        = string
  description = "BigQuery JSON schema of the events table: the content of event-model/schema/bigquery-events.json."
}

variable "partition_type" {
  type        = string
  description = "Time-partitioning granularity of the events table. The loader replaces one DAY partition per changed lake day and refuses a table partitioned otherwise; ten years of days are 3,653 partitions, under BigQuery's 10,000 per table."
  default     = "DAY"

  validation {
    condition     = var.partition_type == "DAY"
    error_message = "clickstream-loader writes DAY partitions (HOUR partitions run out of BigQuery's 10,000 per table after 416 days); see docs/deploy.md to migrate an HOUR-partitioned table."
  }
}

variable "partition_field" {
  type        = string
  description = "TIMESTAMP column the events table is partitioned on."
  default     = "event_time"
}

variable "clustering_fields" {
  type        = list(string)
  description = "Clustering columns of the events table, in order."
  default     = ["event_type", "category_code", "product_id"]
}

variable "require_partition_filter" {
  type        = bool
  description = "Reject queries on the events table that do not filter on the partition column."
  default     = false
}

variable "partition_expiration_days" {
  type        = number
  description = "Delete event partitions (days) older than this many days; null keeps them forever. The lake keeps the Parquet either way, and the loader does not reload expired days (it reads the expiration from the table)."
  default     = null

  validation {
    condition     = var.partition_expiration_days == null ? true : var.partition_expiration_days >= 1
    error_message = "partition_expiration_days must be at least 1, or null to keep every partition."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Prevent Terraform from deleting the events table."
  default     = true
}

variable "dataset_iam_members" {
  type = list(object({
    dataset = string # raw | staging | marts
    role    = string
    member  = string
  }))
  description = "Dataset-level IAM grants; dataset is one of raw, staging or marts."
  default     = []

  validation {
    condition     = alltrue([for b in var.dataset_iam_members : contains(["raw", "staging", "marts"], b.dataset)])
    error_message = "dataset must be one of raw, staging, marts."
  }
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key for customer-managed encryption of the datasets and table; null uses Google-managed keys."
  default     = null
}

variable "labels" {
  type        = map(string)
  description = "Labels applied to datasets and the table."
  default     = {}
}
