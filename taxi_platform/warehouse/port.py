"""The warehouse interface every backend implements, and the results it reports.

The assets call only these methods, so they never branch on the backend:

- ``load_bronze``: replace one file's rows in ``bronze.<colour>_tripdata`` (as landed, text);
- ``build_silver``: replace one file's rows in ``silver.<colour>_tripdata`` (typed, keyed,
  deduplicated), quarantining rows that cannot be typed;
- ``query``: run SQL and return rows; ``describe``: a table's columns and types.

unique_row_id contract (every backend must give the same id for the same row):
lower-case hex md5 of ``vendorid|pickup|dropoff|pulocationid|dolocationid|fare_amount|trip_distance``
where integers are decimal text, timestamps ``YYYY-MM-DD HH:MM:SS``, amounts and distances
rounded half away from zero to two decimals and written with exactly two (``5.00``, ``-5.00``,
``0.60``, never ``-0.00``), NULL is the empty string. An amount too large for 34 digits before
the point (1e34 or more, beyond a DECIMAL(38, 4)) is written as its double's shortest round-trip
text in exponent form (``1e+40``, ``-1.5e+40``, ``1.2345678901234568e+35``), so that no value that
types hashes like NULL. Values that are not finite (``nan``, ``inf``, ``1e309``) do not type:
their rows are quarantined.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dagster import ConfigurableResource

from taxi_platform.schemas import TripSchema
from taxi_platform.watchdog import ClaimsItsRun


@dataclass
class BronzeResult:
    filename: str
    rows: int


@dataclass
class SilverResult:
    filename: str
    rows_in: int  # bronze rows of the file
    rows_out: int  # rows now in silver for the file
    duplicates_collapsed: int  # same id twice in the file: kept the first in file order
    duplicates_in_other_files: int  # id already owned by an earlier month's file
    rows_quarantined: int
    quarantine_reasons: list[tuple[str, int, str]] = field(default_factory=list)  # (column, rows, example)
    pickups_outside_month: int = 0


class WarehouseResource(ClaimsItsRun, ConfigurableResource):
    """Base class of the warehouse backends (the assets ask for this type)."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Strings that must never be shown (a connection string with a password): errors that
        could echo them are raised again with them masked (taxi_platform/secrets.py)."""
        return []

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the warehouse for this process while the block runs. Server backends
        (PostgreSQL, BigQuery) need nothing; DuckDB (one writer process at a time) overrides
        this. Anything else that opens the warehouse (dbt, GX) runs inside it."""
        yield

    def load_bronze(self, schema: TripSchema, partition: str, filename: str, path: str,
                    max_quarantine_fraction: float = 0.01) -> BronzeResult:
        """Replace the file's rows in bronze. Fails, changing nothing, when the file has no
        rows or more than ``max_quarantine_fraction`` of them cannot be typed (the same rule
        silver applies, so a file silver would refuse never replaces a good bronze month)."""
        raise NotImplementedError

    def build_silver(self, schema: TripSchema, partition: str, filename: str,
                     max_quarantine_fraction: float = 0.01) -> SilverResult:
        raise NotImplementedError

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Run SQL and return its rows; parameters are ``?`` placeholders on every backend."""
        raise NotImplementedError

    def describe(self, table: str) -> list[tuple[str, str]]:
        raise NotImplementedError

    def preview_markdown(self, table: str, filename: str, limit: int = 5) -> str:
        raise NotImplementedError

    def duplicated_values(self, table: str, column: str) -> int:
        """How many values of ``column`` appear more than once in the whole ``table``."""
        # The subquery's alias is required before PostgreSQL 16.
        return self.query(f"SELECT count(*) FROM (SELECT {column} FROM {table} "
                          "GROUP BY 1 HAVING count(*) > 1) AS repeated")[0][0]

    def set_up(self) -> list[str]:
        """Create what the warehouse needs before a first load, if missing; returns what was
        done. Embedded and self-hosted warehouses create their schemas on the first load."""
        return [f"{self.name}: nothing to create ahead (schemas and tables come with the first load)"]
