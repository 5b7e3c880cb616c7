output "emails" {
  description = "Service account e-mail per component key."
  value       = { for k, sa in google_service_account.this : k => sa.email }
}

output "members" {
  description = "IAM member string (serviceAccount:EMAIL) per component key."
  value       = { for k, sa in google_service_account.this : k => "serviceAccount:${sa.email}" }
}
