variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project the APIs are enabled in."
}

variable "services" {
  type        = list(string)
  description = "Service names of the APIs to enable (for example run.googleapis.com)."
  default = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

variable "disable_on_destroy" {
  type        = bool
  description = "Disable the APIs when this module is destroyed. Off by default: disabling an API deletes every resource of that kind in the project."
  default     = false
}
