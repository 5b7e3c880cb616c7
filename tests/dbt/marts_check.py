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
