variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project that holds the repository."
}

variable "location" {
  type        = string
  description = "Region of the repository; use the Cloud Run region so image pulls stay in-region."
}

variable "repository_id" {
  type        = string
  description = "Name of the Docker repository."
  default     = "clickstream"
}

variable "description" {
  type        = string
  description = "Human-readable description of the repository."
  default     = "clickstream pipeline images (collector, batcher, loader)"
}

variable "immutable_tags" {
  type        = bool
  description = "Refuse to move an existing tag to a new image; deploy by new tag (for example the git SHA)."
  default     = true
}

variable "keep_most_recent_versions" {
  type        = number
  description = "Image versions per package that the cleanup policy always keeps."
  default     = 10
}

variable "delete_untagged_after_days" {
  type        = number
  description = "Delete untagged image versions older than this many days."
  default     = 14
}

variable "reader_members" {
  type        = list(string)
  description = "IAM members (for example serviceAccount:x@y) granted roles/artifactregistry.reader on this repository only."
  default     = []
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key for customer-managed encryption; null uses Google-managed keys."
  default     = null
}

variable "labels" {
  type        = map(string)
  description = "Labels applied to the repository."
  default     = {}
}
