"""An independent, plain-Python implementation of the unique_row_id contract and of the
silver dedup rule, to check every backend's SQL against (never imported by the platform)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import math
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

from taxi_platform.schemas import INTEGER, TIMESTAMP, TripSchema


def _integer(text: str) -> str:
    value = Decimal(text)
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number")
    return str(int(value))


def _timestamp(text: str) -> str:
    return dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").strftime("%Y-%m-%d %H:%M:%S")


def _amount(text: str) -> str:
    with localcontext() as exact:
        exact.prec = 1000  # enough digits for any double
        value = Decimal(text.strip())
        if not value.is_finite() or not math.isfinite(float(value)):
            raise ValueError(f"{text!r} is not a finite number")
        if abs(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)) >= Decimal("1e34"):
            return repr(float(value))  # beyond DECIMAL(38, 4): the double's shortest text, 1e+40
        rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)  # half away from zero
        return "0.00" if rounded == 0 else f"{rounded:.2f}"


def key_text(row: dict[str, str], schema: TripSchema) -> str:
    parts = []
    for column in schema.key_columns:
        text = (row.get(column) or "").strip()
        if not text:
            parts.append("")
        elif schema.column(column).type == INTEGER:
            parts.append(_integer(text))
        elif schema.column(column).type == TIMESTAMP:
            parts.append(_timestamp(text))
        else:
            parts.append(_amount(text))
    return "|".join(parts)


def unique_row_id(row: dict[str, str], schema: TripSchema) -> str:
    return hashlib.md5(key_text(row, schema).encode()).hexdigest()


def read_rows(path: Path) -> list[dict[str, str]]:
    """The file's rows as dicts keyed by lower-cased column names."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = [h.lower() for h in next(reader)]
        return [dict(zip(header, row)) for row in reader if row]


def expected_silver_ids(path: Path, schema: TripSchema) -> list[str]:
    """The ids silver must hold for one file: first occurrence of each, in file order."""
    seen: dict[str, None] = {}
    for row in read_rows(path):
        seen.setdefault(unique_row_id(row, schema), None)
    return list(seen)
