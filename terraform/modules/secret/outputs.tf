output "secret_id" {
  description = "Short name of the secret."
  value       = google_secret_manager_secret.this.secret_id
}

output "name" {
  description = "Full resource name of the secret (projects/NUMBER/secrets/ID)."
  value       = google_secret_manager_secret.this.name
}
