# A private bucket: uniform bucket-level access, public access prevention enforced,
# object versioning with a bounded noncurrent-version lifetime, optional soft delete, and
# lifecycle transitions to colder storage classes as objects age.
resource "google_storage_bucket" "this" {
  #checkov:skip=CKV_GCP_62:Usage/storage access logs are a legacy feature; object access is audited with Cloud Audit Logs DATA_READ/DATA_WRITE (google_project_iam_audit_config.storage in environments/prod).
  project                     = var.project_id
  name                        = var.name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_seconds
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  # Overwritten or deleted objects (compaction replaces an hour's small files) stay
  # recoverable as noncurrent versions for a bounded time, then are deleted.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.storage_class_transitions
    content {
      condition {
        age                   = lifecycle_rule.value.age_days
        matches_storage_class = lifecycle_rule.value.from_classes
        with_state            = "LIVE"
      }
      action {
        type          = "SetStorageClass"
        storage_class = lifecycle_rule.value.to_class
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.delete_after_days == null ? [] : [var.delete_after_days]
    content {
      condition {
        age        = lifecycle_rule.value
        with_state = "ANY"
      }
      action {
        type = "Delete"
      }
    }
  }
}

resource "google_storage_bucket_iam_member" "members" {
  for_each = { for b in var.iam_members : "${b.role} ${b.member}" => b }

  bucket = google_storage_bucket.this.name
  role   = each.value.role
  member = each.value.member
}
