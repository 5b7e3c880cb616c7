#!/usr/bin/env python3
"""Print the Looker Studio Linking API URL for a clickstream report on the dbt marts.

Opening the URL (signed in to a Google account that can query the project) creates a
Looker Studio report whose BigQuery data sources are bound to YOUR project and marts
dataset. With --template-report-id the report is a copy of that template (its tiles are
kept, its data sources re-pointed); without it, Looker Studio adds the data sources to a
new report and you build the five seed tiles described in docs/looker-studio.md.

    python3 deploy/looker_studio_url.py --project my-project
    python3 deploy/looker_studio_url.py --project my-project --dataset clickstream_marts \
        --template-report-id 0B_U5RNpwhcE6SF85TENURnc4UjA

Linking API reference: https://developers.google.com/looker-studio/integrate/linking-api
Standard library only.
"""

from __future__ import annotations

import argparse
import sys
from urllib.parse import urlencode

LINKING_API_BASE = "https://lookerstudio.google.com/reporting/create"

# Data sources of the report, in alias order (ds0, ds1, ...). Each is a dbt mart in
# dbt/models/marts (tests/deploy/test_looker_studio.py checks that the models exist).
# The alias is what a template report's "Manage added data sources" page shows; keep
# this order when building a template so the aliases line up.
DATA_SOURCES: list[tuple[str, str]] = [
    ("fct_traffic_daily", "Traffic by day"),
    ("fct_traffic_hourly", "Traffic by hour"),
    ("fct_funnel_daily", "Funnel by day"),
    ("fct_product_performance", "Product performance"),
    ("fct_session_dropoff", "Session drop-off"),
    ("fct_funnel_categories", "Funnel by category"),
    ("fct_funnel_brands", "Funnel by brand"),
]

DEFAULT_DATASET = "clickstream_marts"
DEFAULT_REPORT_NAME = "clickstream: traffic and funnel"


def mart_tables() -> list[str]:
    """The mart tables the report reads, in data-source alias order."""
    return [table for table, _ in DATA_SOURCES]


def build_params(
    project: str,
    dataset: str = DEFAULT_DATASET,
    billing_project: str | None = None,
    report_name: str = DEFAULT_REPORT_NAME,
    template_report_id: str | None = None,
    mode: str = "edit",
    tables: list[tuple[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """Linking API query parameters, in a stable order."""
    params: list[tuple[str, str]] = []
    if template_report_id:
        params.append(("c.reportId", template_report_id))
    params.append(("c.mode", mode))
    params.append(("r.reportName", report_name))
    for index, (table, name) in enumerate(tables or DATA_SOURCES):
        alias = f"ds.ds{index}"
        # connector=bigQuery replaces the template data source's configuration entirely,
        # so every required BigQuery parameter is given.
        params += [
            (f"{alias}.connector", "bigQuery"),
            (f"{alias}.type", "TABLE"),
            (f"{alias}.projectId", project),
            (f"{alias}.datasetId", dataset),
            (f"{alias}.tableId", table),
            (f"{alias}.billingProjectId", billing_project or project),
            (f"{alias}.datasourceName", name),
        ]
    return params


def build_url(**kwargs) -> str:
    """The full Linking API URL (parameters URL-encoded)."""
    return f"{LINKING_API_BASE}?{urlencode(build_params(**kwargs))}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the Looker Studio Linking API URL for a report on the clickstream marts.",
    )
    parser.add_argument("--project", required=True, help="Google Cloud project holding the marts dataset")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help=f"marts dataset (default {DEFAULT_DATASET})")
    parser.add_argument("--billing-project", help="project billed for the report's queries (default: --project)")
    parser.add_argument("--report-name", default=DEFAULT_REPORT_NAME, help="name of the new report")
    parser.add_argument("--template-report-id", help="ID of a template report to copy (its data sources must use aliases ds0..ds6)")
    parser.add_argument("--mode", choices=["edit", "view"], default="edit", help="mode the report opens in (default edit)")
    parser.add_argument("--list-tables", action="store_true", help="print the mart tables, one per line, and exit")
    args = parser.parse_args(argv)

    if args.list_tables:
        print("\n".join(mart_tables()))
        return 0
    print(
        build_url(
            project=args.project,
            dataset=args.dataset,
            billing_project=args.billing_project,
            report_name=args.report_name,
            template_report_id=args.template_report_id,
            mode=args.mode,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
