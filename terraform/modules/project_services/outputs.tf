output "enabled_services" {
  description = "Service names of the APIs this module enabled; depend on this output to order resources after API enablement."
  value       = sort([for s in google_project_service.this : s.service])
}
