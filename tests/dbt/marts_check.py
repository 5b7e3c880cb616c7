"""Compare mart rows read from a warehouse with expected_marts.EXPECTED."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from expected_marts import EXPECTED


def normalize(value):
    """Warehouse values -> plain comparable Python values."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (Decimal, float)):
        rounded = round(float(value), 4)
        return int(rounded) if rounded.is_integer() and isinstance(value, Decimal) else rounded
    return value


def same(expected, actual) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual or expected == actual and type(expected) is type(actual)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return abs(float(expected) - float(actual)) < 1e-4
    return expected == actual


def check_mart(model: str, fetch_rows) -> None:
    """fetch_rows(model, columns) -> list of dicts with those columns."""
    keys, expected_rows = EXPECTED[model]
    columns = list(expected_rows[0].keys())
    actual_rows = [{c: normalize(v) for c, v in row.items()} for row in fetch_rows(model, columns)]
    sort_key = lambda row: tuple(str(row[k]) for k in keys)  # noqa: E731
    actual_rows.sort(key=sort_key)
    expected_rows = sorted(expected_rows, key=sort_key)
    problems = []
    if len(actual_rows) != len(expected_rows):
        problems.append(f"{len(actual_rows)} rows, expected {len(expected_rows)}")
    for exp, act in zip(expected_rows, actual_rows):
        for column in columns:
            if not same(exp[column], act.get(column)):
                problems.append(
                    f"{dict((k, exp[k]) for k in keys)} {column}: got {act.get(column)!r}, expected {exp[column]!r}"
                )
    assert not problems, f"{model}:\n  " + "\n  ".join(problems) + "\nactual rows:\n  " + "\n  ".join(
        map(str, actual_rows))


MARTS = sorted(EXPECTED)


# What the hourly run keeps fresh (selectors.yml `hourly`: the incremental models).
HOURLY_MODELS = [
    "stg_clickstream__events", "int_events__sessionized", "fct_sessions", "fct_orders",
    "fct_traffic_hourly", "fct_traffic_daily", "fct_events_daily", "fct_funnel_daily", "fct_data_quality_daily",
]
HOURLY_MARTS = [m for m in MARTS if m in HOURLY_MODELS]
# Every model (the nightly run builds them all).
ALL_MODELS = sorted(set(HOURLY_MODELS) | set(MARTS))


def comparable(value):
    """A warehouse value in a form two builds of the same data agree on exactly."""
    value = normalize(value)
    if isinstance(value, float):
        return round(value, 9)
    return value


def table_differences(model: str, built_rows: list[dict], reference_rows: list[dict]) -> list[str]:
    """Rows of one build of `model` missing from the other, both ways (all columns)."""
    from collections import Counter

    def bag(rows):
        return Counter(tuple(sorted((k, comparable(v)) for k, v in row.items())) for row in rows)

    built, reference = bag(built_rows), bag(reference_rows)
    problems = [f"{model}: only in the incremental build: {dict(row)}" for row in (built - reference)]
    problems += [f"{model}: only in the full rebuild: {dict(row)}" for row in (reference - built)]
    return problems
