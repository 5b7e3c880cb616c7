# The batch side of the pipeline as Cloud Run jobs (batcher, compactor, loader, backfill).
# Each job has a default command line; the orchestrator (Kestra) executes them with
# per-execution argument overrides (for example the hours to load), which needs
# roles/run.jobsExecutorWithOverrides on each job, granted here to executor_members only.

resource "google_cloud_run_v2_job" "this" {
  for_each = var.jobs

  project             = var.project_id
  name                = each.value.name
  location            = var.region
  labels              = merge(var.labels, { component = each.key })
  deletion_protection = var.deletion_protection

  template {
    task_count  = 1
    parallelism = 1
    labels      = merge(var.labels, { component = each.key })

    template {
      service_account       = each.value.service_account_email
      timeout               = "${each.value.timeout_seconds}s"
      max_retries           = each.value.max_retries
      execution_environment = "EXECUTION_ENVIRONMENT_GEN2"

      containers {
        name    = each.key
        image   = each.value.image
        command = each.value.command
        args    = each.value.args

        resources {
          limits = {
            cpu    = each.value.cpu
            memory = each.value.memory
          }
        }

        dynamic "env" {
          for_each = each.value.env
          content {
            name  = env.key
            value = env.value
          }
        }

        dynamic "volume_mounts" {
          for_each = each.value.gcs_volumes
          content {
            name       = volume_mounts.value.name
            mount_path = volume_mounts.value.mount_path
          }
        }
      }

      # Cloud Storage FUSE volumes (for example the read-only CSV import bucket of the backfill).
      dynamic "volumes" {
        for_each = each.value.gcs_volumes
        content {
          name = volumes.value.name
          gcs {
            bucket    = volumes.value.bucket
            read_only = volumes.value.read_only
          }
        }
      }
    }
  }
}

locals {
  executor_grants = {
    for pair in flatten([
      for job_key in keys(var.jobs) : [
        for member in var.executor_members : [
          for role in ["roles/run.jobsExecutorWithOverrides", "roles/run.viewer"] :
          { job = job_key, member = member, role = role }
        ]
      ]
    ]) : "${pair.job} ${pair.role} ${pair.member}" => pair
  }
}

resource "google_cloud_run_v2_job_iam_member" "executors" {
  for_each = local.executor_grants

  project  = var.project_id
  location = google_cloud_run_v2_job.this[each.value.job].location
  name     = google_cloud_run_v2_job.this[each.value.job].name
  role     = each.value.role
  member   = each.value.member
}
