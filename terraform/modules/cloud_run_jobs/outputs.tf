output "job_names" {
  description = "Cloud Run job name per component key."
  value       = { for k, j in google_cloud_run_v2_job.this : k => j.name }
}
