# Remote state in a Cloud Storage bucket (versioned, created once by hand: see
# docs/deploy.md, step 2). The bucket is passed at init time so this file holds no
# project-specific value:
#
#   terraform init -backend-config="bucket=${PROJECT_ID}-tfstate"
#
# The GCS backend locks state during plan/apply, so two operators cannot apply at once.
terraform {
  backend "gcs" {
    prefix = "clickstream/prod"
  }
}
