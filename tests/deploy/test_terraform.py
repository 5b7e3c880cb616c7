"""Terraform: parses, is formatted, follows the module conventions, and checkov finds nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ENV_ROOT, MODULES, REPO, TERRAFORM, blocks, env_root_modules, load_hcl, resources

TF_FILES = sorted(TERRAFORM.rglob("*.tf"))
ROOTS = sorted([p for p in MODULES.iterdir() if p.is_dir()]) + [ENV_ROOT]
CHECKOV = Path(os.environ.get("CHECKOV_BIN") or (REPO / ".venv-checkov" / "bin" / "checkov"))


def test_there_is_terraform():
    assert TF_FILES, "no .tf files under terraform/"
    assert (ENV_ROOT / "main.tf").exists()


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_hcl_parses(path):
    load_hcl(path)


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_module_layout(root):
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (root / name).exists(), f"{root.relative_to(REPO)} lacks {name}"


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_versions_pinned(root):
    doc = load_hcl(root / "versions.tf")
    tf = doc["terraform"][0]
    assert tf.get("required_version"), f"{root.name}: required_version not set"
    providers = {}
    for block in tf["required_providers"]:
        providers.update(block)
    google = providers["google"]
    assert google["source"] == "hashicorp/google"
    version = google["version"]
    # A range with both a floor and a ceiling (for example ">= 6.0, < 7.0").
    assert re.search(r">=?\s*\d", version) and re.search(r"<\s*\d", version), f"{root.name}: google pinned as {version!r}"


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_variables_typed_described_project_id_first(root):
    variables = load_hcl(root / "variables.tf").get("variable", [])
    names = [next(iter(v)) for v in variables]
    assert names, f"{root.name}: no variables"
    assert names[0] == "project_id", f"{root.name}: first variable is {names[0]}, not project_id"
    for block in variables:
        (name, body), = block.items()
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), f"{root.name}: variable {name} is not snake_case"
        assert body.get("type"), f"{root.name}: variable {name} has no type"
        assert (body.get("description") or "").strip(), f"{root.name}: variable {name} has no description"


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_outputs_described(root):
    outputs = load_hcl(root / "outputs.tf").get("output", [])
    assert outputs, f"{root.name}: no outputs"
    for block in outputs:
        (name, body), = block.items()
        assert (body.get("description") or "").strip(), f"{root.name}: output {name} has no description"


def test_every_module_is_used_by_the_environment():
    sources = {m["source"] for m in blocks(load_hcl(ENV_ROOT / "main.tf"), "module").values()}
    for module in MODULES.iterdir():
        assert f"../../modules/{module.name}" in sources, f"module {module.name} is not used by environments/prod"


def test_remote_state_backend_configured():
    text = (ENV_ROOT / "backend.tf").read_text()
    assert 'backend "gcs"' in text
    assert "-backend-config" in text, "backend.tf should say how the state bucket is passed"


def test_terraform_fmt():
    terraform = shutil.which("terraform")
    if terraform is None:
        msg = "SKIPPED terraform fmt: no `terraform` binary on PATH (install Terraform >= 1.5 to run this check)"
        print("\n" + "!" * len(msg) + "\n" + msg + "\n" + "!" * len(msg), file=sys.stderr)
        pytest.skip(msg)
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"terraform fmt found unformatted files:\n{proc.stdout}\n{proc.stderr}"


def _checkov(directory: Path, framework: str) -> dict:
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov not found at {CHECKOV}: run `bash scripts/deploy-checks-env.sh` (or set CHECKOV_BIN)",
            pytrace=False,
        )
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(directory), "--framework", framework, "--skip-download", "--quiet", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    if not proc.stdout.strip():
        pytest.fail(f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}", pytrace=False)
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    # --quiet with no failures may print a bare summary; normalise.
    failed, skipped, passed = [], [], 0
    for r in reports:
        results = r.get("results", {})
        failed += results.get("failed_checks", [])
        skipped += results.get("skipped_checks", [])
        passed += r.get("summary", {}).get("passed", 0)
    return {"failed": failed, "skipped": skipped, "passed": passed, "raw": reports}


def test_checkov_terraform_no_failed_checks():
    result = _checkov(TERRAFORM, "terraform")
    failures = [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']}) {c['check_name']}" for c in result["failed"]]
    assert not failures, "checkov failed checks:\n" + "\n".join(failures)


def test_checkov_dockerfile_no_failed_checks():
    result = _checkov(REPO / "deploy", "dockerfile")
    failures = [f"{c['check_id']} {c['file_path']} {c['check_name']}" for c in result["failed"]]
    assert not failures, "checkov failed checks:\n" + "\n".join(failures)


SKIP_RE = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def test_checkov_suppressions_have_written_reasons():
    for path in TF_FILES + [REPO / "deploy" / "Dockerfile"]:
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            m = SKIP_RE.search(line)
            if m:
                reason = (m.group(2) or "").strip()
                assert len(reason) >= 20, f"{path.relative_to(REPO)}:{lineno}: {m.group(1)} suppressed without a written reason"


def test_alert_policies_watch_the_pipelines_own_resources():
    """Each alert filters on the resource the environment wires in, notifies the configured
    channels and tells the reader what to do; a filter naming a literal subscription or service
    would watch nothing after a rename."""
    monitoring = load_hcl(MODULES / "monitoring" / "main.tf")
    policies = {name: body for (kind, name), body in resources(monitoring).items() if kind == "google_monitoring_alert_policy"}
    assert set(policies) == {"backlog_age", "dead_letters", "collector_errors", "collector_latency"}
    watched = {
        "backlog_age": ("var.subscription_name", "pubsub.googleapis.com/subscription/oldest_unacked_message_age"),
        "dead_letters": ("var.subscription_name", "pubsub.googleapis.com/subscription/dead_letter_message_count"),
        "collector_errors": ("var.collector_service_name", "run.googleapis.com/request_count"),
        "collector_latency": ("var.collector_service_name", "run.googleapis.com/request_latencies"),
    }
    for name, body in policies.items():
        condition = body["conditions"][0]["condition_threshold"][0]
        variable, metric = watched[name]
        monitoring_filter = condition["filter"].replace('\\"', '"')  # python-hcl2 keeps the escapes
        assert "${" + variable + "}" in monitoring_filter, f"{name} does not filter on {variable}: {monitoring_filter}"
        assert f'metric.type = "{metric}"' in monitoring_filter, name
        assert body["notification_channels"] == "${local.channels}", name
        assert "docs/operations.md" in body["documentation"][0]["content"], name

    module = env_root_modules()["monitoring"]
    assert module["subscription_name"] == "${module.pubsub.subscription_name}"
    assert module["dead_letter_subscription_name"] == "${module.pubsub.dead_letter_subscription_name}"
    assert module["collector_service_name"] == "${module.collector.name}"
