# The collector: a public Cloud Run service (browsers and servers send events to it; it
# authenticates them with write keys, not IAM) that publishes to Pub/Sub.

locals {
  # Flags of clickstream-collector, set through the environment variables its --help lists.
  env = merge(
    {
      CLICKSTREAM_SINK                     = "pubsub"
      CLICKSTREAM_PUBSUB_PROJECT           = var.project_id
      CLICKSTREAM_PUBSUB_TOPIC             = var.topic_name
      CLICKSTREAM_PUBSUB_DEAD_LETTER_TOPIC = var.dead_letter_topic_name
      CLICKSTREAM_FORWARDED_FOR_HOPS       = tostring(var.forwarded_for_hops)
      CLICKSTREAM_LOG_FORMAT               = "json"
      CLICKSTREAM_RATE_LIMIT_PER_SECOND    = tostring(var.rate_limit_per_second)
      CLICKSTREAM_SHUTDOWN_GRACE_SECONDS   = tostring(var.shutdown_grace_seconds)
    },
    length(var.cors_origins) == 0 ? {} : { CLICKSTREAM_CORS_ORIGINS = join(",", var.cors_origins) },
    var.extra_env,
  )
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  name                = var.service_name
  location            = var.region
  description         = "clickstream collector: validates, enriches and queues tracker events"
  ingress             = var.ingress
  labels              = var.labels
  deletion_protection = var.deletion_protection

  template {
    service_account                  = var.service_account_email
    max_instance_request_concurrency = var.concurrency
    timeout                          = "${var.request_timeout_seconds}s"
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    labels                           = var.labels

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      name  = "collector"
      image = var.image

      ports {
        name           = "http1"
        container_port = 8080 # Cloud Run sets PORT=8080; the collector listens on $PORT
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = var.cpu_idle
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.env
        content {
          name  = env.key
          value = env.value
        }
      }

      # KEY=SOURCE pairs, comma-separated (CLICKSTREAM_WRITE_KEYS), from Secret Manager.
      env {
        name = "CLICKSTREAM_WRITE_KEYS"
        value_source {
          secret_key_ref {
            secret  = var.write_keys_secret_id
            version = var.write_keys_secret_version
          }
        }
      }

      # Traffic is sent once /readyz answers (Pub/Sub client ready).
      startup_probe {
        http_get {
          path = "/readyz"
          port = 8080
        }
        initial_delay_seconds = 0
        period_seconds        = 2
        timeout_seconds       = 1
        failure_threshold     = 30
      }

      liveness_probe {
        http_get {
          path = "/healthz"
          port = 8080
        }
        period_seconds    = 15
        timeout_seconds   = 2
        failure_threshold = 3
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }
}

# Anyone may call the collector: trackers run in shoppers' browsers. Requests are
# authenticated by write key (HTTP basic auth) and rate-limited per key by the collector.
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  count = var.allow_unauthenticated ? 1 : 0

  project  = var.project_id
  location = google_cloud_run_v2_service.this.location
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
