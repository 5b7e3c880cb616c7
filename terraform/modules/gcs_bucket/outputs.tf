output "name" {
  description = "Bucket name."
  value       = google_storage_bucket.this.name
}

output "url" {
  description = "gs:// URL of the bucket, the form the batcher's and loader's --lake flag takes."
  value       = "gs://${google_storage_bucket.this.name}"
}
