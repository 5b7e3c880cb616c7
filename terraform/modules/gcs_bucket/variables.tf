variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project that owns the bucket."
}

variable "name" {
  type        = string
  description = "Globally unique bucket name."
}

variable "location" {
  type        = string
  description = "Bucket location. A single region equal to the Cloud Run region avoids cross-region egress; BigQuery US/EU multi-region datasets can load from any bucket inside that multi-region."
}

variable "storage_class_transitions" {
  type = list(object({
    age_days     = number
    from_classes = list(string)
    to_class     = string
  }))
  description = "Lifecycle transitions to colder classes by object age. Colder classes cost less to store but charge retrieval and have minimum storage durations (Nearline 30 d, Coldline 90 d, Archive 365 d): only move data you rarely reread (a backfill reloads old hours)."
  default = [
    { age_days = 30, from_classes = ["STANDARD"], to_class = "NEARLINE" },
    { age_days = 90, from_classes = ["NEARLINE"], to_class = "COLDLINE" },
    { age_days = 365, from_classes = ["COLDLINE"], to_class = "ARCHIVE" },
  ]
}

variable "noncurrent_version_retention_days" {
  type        = number
  description = "Days an overwritten or deleted object version is kept before it is deleted."
  default     = 7
}

variable "soft_delete_retention_seconds" {
  type        = number
  description = "Soft-delete retention in seconds (0 disables it, or 604800 to 7776000). Versioning already keeps deleted objects recoverable, so 0 avoids paying for the same bytes twice."
  default     = 0
}

variable "delete_after_days" {
  type        = number
  description = "Delete live objects older than this many days; null keeps them forever."
  default     = null
}

variable "force_destroy" {
  type        = bool
  description = "Allow terraform destroy to delete a bucket that still holds objects."
  default     = false
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key for default customer-managed encryption; null uses Google-managed keys."
  default     = null
}

variable "iam_members" {
  type = list(object({
    role   = string
    member = string
  }))
  description = "Bucket-level IAM grants (role, member); the only access besides project owners."
  default     = []
}

variable "labels" {
  type        = map(string)
  description = "Labels applied to the bucket."
  default     = {}
}
