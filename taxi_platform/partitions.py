"""The monthly partitions, which follow the source, and helpers to move between keys and dates.

Partition keys are ``YYYY-MM`` (``2019-01``), one per month a source publishes:

| ``TAXI_SOURCE`` | yellow | green |
|---|---|---|
| ``mirror`` (default: the DataTalksClub CSV mirror) | 2019-01 … 2021-07 | 2019-01 … 2021-07 |
| ``tlc`` (the TLC's own Parquet files) | 2009-01 … the last complete month | 2013-08 … the last complete month |

A month's partition exists once the month has ended (the TLC publishes it about two months later;
the publication sensor waits quietly for it). The partitions are read from the environment when
the definitions load.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re

from dagster import MonthlyPartitionsDefinition

MONTH_KEY_FORMAT = "%Y-%m"
MIRROR, TLC = "mirror", "tlc"
SOURCES = (MIRROR, TLC)
# (first month, last month or None: the last complete one) per source and colour
PUBLISHED_MONTHS = {
    MIRROR: {"yellow": ("2019-01", "2021-07"), "green": ("2019-01", "2021-07")},
    TLC: {"yellow": ("2009-01", None), "green": ("2013-08", None)},
}


def source_from_env(env=None) -> str:
    env = os.environ if env is None else env
    source = (env.get("TAXI_SOURCE") or MIRROR).strip().lower()
    if source not in SOURCES:
        raise ValueError(f"TAXI_SOURCE={source!r} is not a source this build knows (use: {', '.join(SOURCES)})")
    return source


@functools.cache
def _partitions(first: str, last: str | None) -> MonthlyPartitionsDefinition:
    end = None
    if last:
        after = dt.date(int(last[:4]) + (last[5:] == "12"), int(last[5:]) % 12 + 1, 1)
        end = after.strftime(MONTH_KEY_FORMAT)
    return MonthlyPartitionsDefinition(start_date=first, end_date=end, fmt=MONTH_KEY_FORMAT, end_offset=0)


def partitions_for(colour: str, source: str | None = None) -> MonthlyPartitionsDefinition:
    """A colour's months at the source (``TAXI_SOURCE`` when not given)."""
    return _partitions(*PUBLISHED_MONTHS[source or source_from_env()][colour])


def all_colours_partitions(source: str | None = None) -> MonthlyPartitionsDefinition:
    """Every month any colour has at the source (what gold/fct_trips, both colours, is partitioned by)."""
    spans = PUBLISHED_MONTHS[source or source_from_env()].values()
    last = None if any(end is None for _, end in spans) else max(end for _, end in spans)
    return _partitions(min(first for first, _ in spans), last)


def within(partitions: MonthlyPartitionsDefinition, month: str) -> bool:
    """Whether ``month`` lies within the partitions' span (whether it has ended is another matter)."""
    start = parse_month(month)
    return (partitions.start.date() <= start
            and (partitions.end is None or start < partitions.end.date()))


def first_month(colour: str, source: str | None = None) -> str:
    return PUBLISHED_MONTHS[source or source_from_env()][colour][0]


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
