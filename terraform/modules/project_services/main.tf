# Enables the Google Cloud APIs the pipeline uses. APIs are left enabled on destroy:
# disabling an API tears down every resource of that kind in the project, including ones
# this configuration does not manage.
resource "google_project_service" "this" {
  for_each = toset(var.services)

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = var.disable_on_destroy
  disable_dependent_services = false
}
