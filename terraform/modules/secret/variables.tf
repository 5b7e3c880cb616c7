variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project that holds the secret."
}

variable "secret_id" {
  type        = string
  description = "Name of the secret."
}

variable "accessor_members" {
  type        = list(string)
  description = "IAM members granted roles/secretmanager.secretAccessor on this secret only."
  default     = []
}

variable "labels" {
  type        = map(string)
  description = "Labels applied to the secret."
  default     = {}
}
