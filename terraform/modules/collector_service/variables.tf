variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project the service runs in (also the Pub/Sub project)."
}

variable "region" {
  type        = string
  description = "Cloud Run region."
}

variable "service_name" {
  type        = string
  description = "Name of the Cloud Run service."
  default     = "clickstream-collector"
}

variable "image" {
  type        = string
  description = "Collector container image (REGION-docker.pkg.dev/PROJECT/REPO/clickstream-collector:TAG)."
}

variable "service_account_email" {
  type        = string
  description = "Runtime service account; needs only publisher on the two topics and access to the write-keys secret."
}

variable "topic_name" {
  type        = string
  description = "Events topic (CLICKSTREAM_PUBSUB_TOPIC)."
}

variable "dead_letter_topic_name" {
  type        = string
  description = "Dead-letter topic for rejected events (CLICKSTREAM_PUBSUB_DEAD_LETTER_TOPIC)."
}

variable "write_keys_secret_id" {
  type        = string
  description = "Secret Manager secret holding the write keys as KEY=SOURCE pairs separated by commas (CLICKSTREAM_WRITE_KEYS)."
}

variable "write_keys_secret_version" {
  type        = string
  description = "Secret version to mount; \"latest\" picks up a rotated key at the next revision or instance start."
  default     = "latest"
}

variable "cors_origins" {
  type        = list(string)
  description = "Browser origins allowed to send events (CLICKSTREAM_CORS_ORIGINS), for example [\"https://shop.example.com\"]."
  default     = []
}

variable "min_instances" {
  type        = number
  description = "Instances kept warm; 1 avoids cold starts on the first event after idle (billed while idle)."
  default     = 1
}

variable "max_instances" {
  type        = number
  description = "Upper bound on instances: the cost ceiling under a traffic spike or abuse."
  default     = 10
}

variable "concurrency" {
  type        = number
  description = "Concurrent requests per instance."
  default     = 250
}

variable "cpu" {
  type        = string
  description = "vCPU limit per instance."
  default     = "1"
}

variable "memory" {
  type        = string
  description = "Memory limit per instance."
  default     = "512Mi"
}

variable "cpu_idle" {
  type        = bool
  description = "Allocate CPU only while requests are in flight (request-based billing). The collector publishes within the request, so no background CPU is needed."
  default     = true
}

variable "request_timeout_seconds" {
  type        = number
  description = "Cloud Run request timeout; above the collector's own 15 s request deadline."
  default     = 30
}

variable "ingress" {
  type        = string
  description = "Ingress setting: INGRESS_TRAFFIC_ALL for direct browser traffic, INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER behind an external HTTPS load balancer (Cloud Armor, custom domain)."
  default     = "INGRESS_TRAFFIC_ALL"
}

variable "allow_unauthenticated" {
  type        = bool
  description = "Grant roles/run.invoker to allUsers; required for browser trackers (the collector authenticates write keys itself)."
  default     = true
}

variable "forwarded_for_hops" {
  type        = number
  description = "Proxies that append to X-Forwarded-For in front of the collector: 1 on Cloud Run, 2 behind an external load balancer."
  default     = 1
}

variable "rate_limit_per_second" {
  type        = number
  description = "Events per second per write key (CLICKSTREAM_RATE_LIMIT_PER_SECOND); 0 is unlimited."
  default     = 10000
}

variable "shutdown_grace_seconds" {
  type        = number
  description = "Seconds to drain in-flight requests on SIGTERM; Cloud Run kills the instance 10 s after SIGTERM, so keep it below 10."
  default     = 8

  validation {
    condition     = var.shutdown_grace_seconds < 10
    error_message = "Cloud Run sends SIGKILL 10 seconds after SIGTERM; shutdown_grace_seconds must be below 10."
  }
}

variable "extra_env" {
  type        = map(string)
  description = "Further CLICKSTREAM_* variables for the collector (see clickstream-collector --help)."
  default     = {}
}

variable "deletion_protection" {
  type        = bool
  description = "Prevent Terraform from deleting the service."
  default     = true
}

variable "labels" {
  type        = map(string)
  description = "Labels applied to the service and its revisions."
  default     = {}
}
