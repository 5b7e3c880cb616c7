variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project the service accounts are created in."
}

variable "accounts" {
  type = map(object({
    account_id   = string
    display_name = string
    description  = string
  }))
  description = "Service accounts to create, keyed by component (collector, batcher, compactor, loader, dbt, kestra)."
}

variable "project_roles" {
  type        = map(list(string))
  description = "Project-level roles per component key; keep to roles that cannot be granted on a narrower resource (for example roles/bigquery.jobUser)."
  default     = {}
}
