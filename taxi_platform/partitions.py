"""The one monthly partitions definition, and helpers to move between keys and dates.

Partition keys are ``YYYY-MM`` (``2019-01``). The first month is 2019-01; the last is the
last complete month (Dagster only creates a month's partition once the month has ended).
"""

from __future__ import annotations

import datetime as dt
import re

from dagster import MonthlyPartitionsDefinition

FIRST_MONTH = "2019-01"
MONTH_KEY_FORMAT = "%Y-%m"

monthly_partitions = MonthlyPartitionsDefinition(
    start_date=FIRST_MONTH, fmt=MONTH_KEY_FORMAT, end_offset=0
)

_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(key: str) -> dt.date:
    """``'2019-01'`` -> ``date(2019, 1, 1)``; a clear ValueError for anything else."""
    match = _MONTH_RE.match(key)
    if not match:
        raise ValueError(f"{key!r} is not a month partition key (expected YYYY-MM, e.g. 2019-01)")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def month_bounds(key: str) -> tuple[dt.datetime, dt.datetime]:
    """The half-open interval [first instant of the month, first instant of the next)."""
    start = parse_month(key)
    end = dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time())


def month_range(first: str, last: str) -> list[str]:
    """Every month key from ``first`` to ``last`` inclusive, e.g. ``2019-01..2019-03``."""
    current, stop = parse_month(first), parse_month(last)
    if current > stop:
        raise ValueError(f"month range {first}..{last} is empty: {first} comes after {last}")
    keys = []
    while current <= stop:
        keys.append(current.strftime(MONTH_KEY_FORMAT))
        current = dt.date(current.year + (current.month == 12), current.month % 12 + 1, 1)
    return keys


def parse_month_range(text: str) -> list[str]:
    """``'2019-01..2019-03'`` or a single ``'2019-01'`` -> list of month keys."""
    first, _, last = text.partition("..")
    return month_range(first, last or first)
