"""Helpers to load the same files into several warehouse backends and compare what they hold."""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

from taxi_platform.files import check_header, read_header
from taxi_platform.schemas import TripSchema

REAL_YELLOW = "mirror/yellow/yellow_tripdata_2019-01.csv.gz"


def load_month(warehouse, schema: TripSchema, month: str, path: Path, max_fraction: float = 0.01,
               filename: str | None = None):
    """bronze then silver for one month's file, as the assets do; returns (bronze, silver)."""
    name = filename or schema.filename(month)
    check_header(read_header(path, file=name, partition=month), schema, file=name, partition=month)
    bronze = warehouse.load_bronze(schema, month, name, str(path), max_fraction)
    silver = warehouse.build_silver(schema, month, name, max_fraction)
    return bronze, silver


def silver_ids(warehouse, schema: TripSchema, filename: str | None = None) -> set[str]:
    where, params = ("WHERE filename = ?", [filename]) if filename else ("", [])
    return {r[0] for r in warehouse.query(
        f"SELECT unique_row_id FROM silver.{schema.table} {where}", params)}


def _normal(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def silver_rows(warehouse, schema: TripSchema) -> list[tuple]:
    """Every silver row (id, file, typed columns), sorted: comparable across backends."""
    cols = ", ".join(["unique_row_id", "filename", *schema.sql_names])
    rows = warehouse.query(f"SELECT {cols} FROM silver.{schema.table}")
    return sorted((tuple(_normal(v) for v in row) for row in rows), key=repr)


def quarantine_rows(warehouse, schema: TripSchema) -> list[tuple]:
    cols = ", ".join(["filename", "line_number", "reason", *schema.sql_names])
    return sorted(tuple(r) for r in warehouse.query(f"SELECT {cols} FROM silver.{schema.table}_quarantine"))


def bronze_rows(warehouse, schema: TripSchema) -> list[tuple]:
    cols = ", ".join([*schema.sql_names, "filename"])
    return sorted((tuple(r) for r in warehouse.query(f"SELECT {cols} FROM bronze.{schema.table}")), key=repr)


def bronze_values(warehouse, schema: TripSchema) -> list[tuple]:
    """bronze_rows with every number as its value (``' 2 '``, ``2`` and ``2.0`` alike): DuckDB
    keeps a month whose every value types typed, and shows it as the text DuckDB writes the
    value back as, where a server backend shows the file's own text."""
    def value(text):
        try:
            number = float(text)
        except (TypeError, ValueError):
            return text
        return "nan" if math.isnan(number) else number
    return sorted((tuple(value(v) for v in row) for row in bronze_rows(warehouse, schema)), key=repr)


def write_csv(path: Path, schema: TripSchema, rows: list[dict[str, str]], gz: bool = True) -> Path:
    """A file in the published layout (header, CRLF) from rows keyed by sql names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(schema.header)
        for row in rows:
            writer.writerow([row.get(c, "") for c in schema.required])
    return path
