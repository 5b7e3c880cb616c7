variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project the jobs run in."
}

variable "region" {
  type        = string
  description = "Cloud Run region of the jobs."
}

variable "jobs" {
  type = map(object({
    name                  = string
    image                 = string
    command               = list(string)
    args                  = list(string)
    env                   = optional(map(string), {})
    service_account_email = string
    timeout_seconds       = optional(number, 3600)
    max_retries           = optional(number, 1)
    cpu                   = optional(string, "1")
    memory                = optional(string, "1Gi")
    gcs_volumes = optional(list(object({
      name       = string
      bucket     = string
      mount_path = string
      read_only  = optional(bool, true)
    })), [])
  }))
  description = "Cloud Run jobs keyed by component: job name, image, entrypoint command and default args (a clickstream binary and its flags), environment, runtime service account, limits and optional Cloud Storage volumes."
}

variable "executor_members" {
  type        = list(string)
  description = "IAM members allowed to execute the jobs with argument overrides and read their executions (the orchestrator's service account)."
  default     = []
}

variable "deletion_protection" {
  type        = bool
  description = "Prevent Terraform from deleting the jobs."
  default     = false
}

variable "labels" {
  type        = map(string)
  description = "Labels applied to the jobs and their executions."
  default     = {}
}
