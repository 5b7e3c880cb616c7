"""deploy/looker_studio_url.py: stdlib only, real Linking API parameters, real mart tables."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from urllib.parse import parse_qsl, urlsplit

from conftest import REPO

SCRIPT = REPO / "deploy" / "looker_studio_url.py"
MARTS = REPO / "dbt" / "models" / "marts"
DOC = REPO / "docs" / "looker-studio.md"

# Linking API parameter names (control, report, and the BigQuery connector's data source
# parameters): https://developers.google.com/looker-studio/integrate/linking-api
CONTROL = {"c.reportId", "c.pageId", "c.mode", "c.explain"}
REPORT = {"r.reportName", "r.measurementId", "r.keepMeasurementId"}
BIGQUERY_DS = {
    "connector", "type", "projectId", "datasetId", "tableId", "billingProjectId", "datasourceName",
    "keepDatasourceName", "refreshFields", "isPartitioned", "includeEmailsExpiredSessions", "sql", "sqlReplace",
    "gaTemplateLevel",
}


def _module():
    spec = importlib.util.spec_from_file_location("looker_studio_url", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> str:
    # -I -S: isolated, no site-packages: the script must need nothing but the standard library.
    proc = subprocess.run([sys.executable, "-I", "-S", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_tables_are_dbt_marts():
    models = {p.stem for p in MARTS.rglob("*.sql")}
    assert models, "dbt/models/marts has no models"
    tables = _module().mart_tables()
    missing = sorted(set(tables) - models)
    assert not missing, f"looker_studio_url.py names tables that are not dbt marts: {missing}"
    assert len(tables) == len(set(tables))
    assert _run("--project", "p", "--list-tables").splitlines() == tables


def test_url_uses_linking_api_parameters():
    url = _run("--project", "my-proj", "--dataset", "clickstream_marts", "--template-report-id", "abc123")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://lookerstudio.google.com/reporting/create"
    params = parse_qsl(parts.query, strict_parsing=True)
    names = [k for k, _ in params]
    assert len(names) == len(set(names)), "a parameter is repeated"
    values = dict(params)
    assert values["c.reportId"] == "abc123"
    sources: dict[str, dict[str, str]] = {}
    for key, value in params:
        if key.startswith("ds."):
            m = re.fullmatch(r"ds\.(ds\d+)\.([A-Za-z]+)", key)
            assert m, f"bad data source parameter {key}"
            assert m.group(2) in BIGQUERY_DS, f"not a BigQuery Linking API parameter: {key}"
            sources.setdefault(m.group(1), {})[m.group(2)] = value
        else:
            assert key in CONTROL | REPORT, f"not a Linking API parameter: {key}"
    tables = _module().mart_tables()
    assert list(sources) == [f"ds{i}" for i in range(len(tables))]
    for alias, table in zip(sources, tables):
        ds = sources[alias]
        assert ds["connector"] == "bigQuery" and ds["type"] == "TABLE"
        assert ds["projectId"] == "my-proj" and ds["billingProjectId"] == "my-proj"
        assert ds["datasetId"] == "clickstream_marts"
        assert ds["tableId"] == table


def test_billing_project_and_no_template():
    url = _run("--project", "data-proj", "--billing-project", "bill-proj")
    values = dict(parse_qsl(urlsplit(url).query))
    assert "c.reportId" not in values
    assert values["ds.ds0.projectId"] == "data-proj"
    assert values["ds.ds0.billingProjectId"] == "bill-proj"


def test_doc_describes_every_data_source_and_the_screenshot():
    text = DOC.read_text()
    for table in _module().mart_tables():
        assert table in text, f"docs/looker-studio.md does not mention {table}"
    assert "docs/images/local-dashboard.png" in text or "images/local-dashboard.png" in text
    assert "deploy/looker_studio_url.py" in text
