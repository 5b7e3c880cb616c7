output "repository_id" {
  description = "Name of the Docker repository."
  value       = google_artifact_registry_repository.this.repository_id
}

output "repository_url" {
  description = "Registry prefix for image names: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY."
  value       = "${google_artifact_registry_repository.this.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}"
}
