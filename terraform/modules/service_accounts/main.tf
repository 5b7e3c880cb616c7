# One service account per component. Resource-level grants (topic, subscription, bucket,
# dataset, secret, job) are made by the modules that own those resources; only roles that
# have no narrower scope (BigQuery job creation) are granted on the project here.
resource "google_service_account" "this" {
  for_each = var.accounts

  project      = var.project_id
  account_id   = each.value.account_id
  display_name = each.value.display_name
  description  = each.value.description
}

resource "google_project_iam_member" "project_roles" {
  for_each = {
    for pair in flatten([
      for key, roles in var.project_roles : [for role in roles : { key = key, role = role }]
    ]) : "${pair.key} ${pair.role}" => pair
  }

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.this[each.value.key].email}"
}
