"""The warehouse port: what every backend does, and the steps they all share.

The assets call only :class:`WarehouseResource`, so they never branch on the backend. The base
class owns the steps every backend shares (template methods); a backend supplies its SQL in the
``_``-prefixed hooks, in its own package (``warehouse/duckdb``, ``warehouse/postgres``,
``warehouse/bigquery``), and answers what the other layers used to guess: its Dagster kind and
table names, the SQLAlchemy URL Great Expectations validates through, the environment of a dbt
run, its identity for the unchanged-month record, and the secrets never to show.

**Bronze** (:meth:`WarehouseResource.load_bronze`), one month's file:

1. its columns are checked against the contract (taxi_platform/files.py:check_file_columns);
2. it is *landed*: every row, every column as text, into ``bronze.<colour>_tripdata_landed``
   under a new load id, committed but not yet part of bronze (the view ``bronze.<colour>_tripdata``
   shows only published loads). DuckDB keeps a file whose every value types typed instead,
   shown as text by that name (a view);
3. the *gate* judges the landed rows: at least one row; no more than TAXI_MAX_QUARANTINE_FRACTION
   of them untypable; not far fewer rows than the month already holds (or than the TLC published);
   most pickups inside the month; then the Great Expectations bronze suite (``gate``). The run
   tag ``taxi/reload=true`` accepts an implausible file deliberately; nothing accepts the others;
4. *publish*: one transaction makes the new load the month's and drops the month's earlier loads,
   whatever their file (``.csv.gz`` or ``.parquet``: a month is one partition, whatever its source).

A file that fails any step is discarded and the month loaded before stays as it was; leftovers of a
crashed load are discarded by the next one. Writers of one month take turns (:meth:`_month_lock`).

**Silver** (:meth:`WarehouseResource.build_silver`): the month's published bronze load typed,
keyed and deduplicated, replacing the month's rows (any of its files) in one transaction.

**The unique_row_id contract** (every backend gives the same id for the same row): lower-case hex
md5 of ``vendorid|pickup|dropoff|pulocationid|dolocationid|fare_amount|trip_distance`` where
integers are decimal text, timestamps ``YYYY-MM-DD HH:MM:SS``, amounts and distances rounded half
away from zero to two decimals and written with exactly two (``5.00``, ``-5.00``, ``0.60``, never
``-0.00``), NULL is the empty string. An amount too large for 34 digits before the point (1e34 or
more, beyond a DECIMAL(38, 4)) is written as its double's shortest round-trip text in exponent
form (``1e+40``, ``-1.5e+40``, ``1.2345678901234568e+35``), so that no value that types hashes
like NULL. Values that are not finite (``nan``, ``inf``, ``1e309``) do not type: their rows are
quarantined. A typed value from a Parquet file is first written as text (a double as its shortest
round-trip decimal: ``9.73``, a timestamp as ``YYYY-MM-DD HH:MM:SS``) and then treated exactly as
the CSV's text, so a trip gets the same id whichever format carried it. Rows with the same id in
one file collapse to the first in file order (BigQuery: a deterministic one); an id already owned
by an earlier month's file stays there.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from taxi_platform import errors
from taxi_platform.files import FileContract
from taxi_platform.partitions import month_bounds
from taxi_platform.schemas import TripSchema
from taxi_platform.settings import FromEnvironment, setting
from taxi_platform.sources import layouts
from taxi_platform.sources.layouts import LayoutReport
from taxi_platform.watchdog import ClaimsItsRun

# The gate's plausibility rules (docs/troubleshooting.md): a month loaded again keeps close to its
# row count (the same month republished by the TLC, or from the other source, differs by a
# fraction of a percent), so an incoming file with fewer rows than
# this share of what the month holds, or with fewer of its pickups inside the month, is refused
# unless loaded deliberately (taxi/reload=true).
MIN_SHARE_OF_LOADED = 0.8
MIN_PICKUPS_IN_MONTH = 0.5
MIN_SHARE_OF_PUBLISHED = 0.9
# Below this many rows a file's share of pickups inside the month says nothing (the first rows
# of a real month are often strays from earlier months).
MIN_ROWS_TO_JUDGE_PICKUPS = 1000


@dataclass
class BronzeResult:
    filename: str
    rows: int
    unknown_columns: list[str] = field(default_factory=list)  # kept in bronze, not loaded into silver
    replaced: list[str] = field(default_factory=list)  # the month's files whose rows this load replaced
    layout: LayoutReport | None = None  # an older layout (yellow 2009-2010): what its mapping did


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


@dataclass(frozen=True)
class IncomingProfile:
    """What a landed, not yet published, load holds (one query over its rows)."""

    rows: int
    untypable_rows: int
    pickups_in_month: int
    untypable_by_column: list[tuple[str, int, str]] = field(default_factory=list)  # when untypable_rows


@dataclass(frozen=True)
class PublishedLoad:
    """The load bronze holds for a month."""

    month: str
    filename: str
    load_id: str
    rows: int


@dataclass(frozen=True)
class FileRowCounts:
    """What the warehouse holds of one file now, counted by filename (the row reconciliation)."""

    bronze: int  # rows of the file in bronze (the published load)
    silver: int  # rows of the file in silver
    quarantined: int  # rows of the file in silver's quarantine


Gate = Callable[[str], str | None]  # load id -> None when it passes, else what it refuses


class WarehouseResource(FromEnvironment, ClaimsItsRun, ConfigurableResource):
    """Base class of the warehouse backends (the assets ask for this type)."""

    max_quarantine_fraction: float = Field(
        default_factory=setting("max_quarantine_fraction", float),
        description="TAXI_MAX_QUARANTINE_FRACTION: above this share of untypable rows a month is refused")
    force_reload: bool = Field(
        default_factory=setting("force_reload"),
        description="TAXI_FORCE_RELOAD: reload months even when unchanged (as the run tag taxi/reload=true)")

    # -- what the other layers ask ----------------------------------------------------------
    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def held_by_dbt_while_it_runs(self) -> bool:
        """True when dbt's process holds the warehouse while it runs, so that this process cannot
        read it until dbt exits (DuckDB's single-writer file); a server takes both at once."""
        return False

    @property
    def kind(self) -> str:
        """The Dagster kind shown on the assets (``duckdb``, ``postgres``, ``bigquery``)."""
        return self.name

    def table_name(self, table: str) -> str:
        """``dagster/table_name`` of a layer's table (``silver.yellow_tripdata`` on DuckDB)."""
        return table

    def table_url(self, table: str) -> str | None:
        """A link to the table in the warehouse's own console, where there is one."""
        return None

    def identity(self) -> str:
        """Which warehouse a load went to (the unchanged-month record compares it)."""
        return self.name

    def gx_url(self) -> str:
        """The SQLAlchemy URL Great Expectations validates through."""
        raise NotImplementedError

    def dbt_env(self) -> dict[str, str]:
        """The environment variables of a dbt run against this warehouse (profiles.yml reads
        them; TAXI_WAREHOUSE picks the target)."""
        return {"TAXI_WAREHOUSE": self.name}

    def secrets(self) -> list[str]:
        """Strings that must never be shown (a connection string with a password): errors that
        could echo them are raised again with them masked (taxi_platform/secrets.py)."""
        return []

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the warehouse for this process while the block runs. Server backends need
        nothing; DuckDB (one writer process at a time) overrides this. Anything else that opens
        the warehouse (dbt, GX) runs inside it."""
        yield

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Keep the warehouse open for the block's queries, where opening it costs (DuckDB opens
        its file for each connection); a server's connections are cheap enough, so nothing is kept."""
        yield

    @contextlib.contextmanager
    def outside_session(self) -> Iterator[None]:
        """Let go of what a :meth:`session` keeps open while the block runs (GX's own
        connections, dbt's process)."""
        yield

    @contextlib.contextmanager
    def metered(self) -> Iterator[list[int] | None]:
        """The bytes the block's queries processed, where the warehouse bills by them (a list
        filled when the block ends), else None."""
        yield None

    def set_up(self) -> list[str]:
        """Create what the warehouse needs before a first load, if missing; returns what was
        done. Embedded and self-hosted warehouses create their schemas on the first load."""
        return [f"{self.name}: nothing to create ahead (schemas and tables come with the first load)"]

    def ensure_tables(self, schema: TripSchema) -> None:
        """Create the colour's silver tables (and what else its backend creates with them) if
        missing, empty: the dbt staging views read silver before its first month loads."""
        raise NotImplementedError

    # -- SQL -------------------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Run SQL and return its rows; parameters are ``?`` placeholders on every backend."""
        return self.select(sql, params)[1]

    def select(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Run SQL and return (column names, rows)."""
        raise NotImplementedError

    def describe(self, table: str) -> list[tuple[str, str]]:
        raise NotImplementedError

    def preview(self, table: str, filename: str, limit: int = 5) -> tuple[list[str], list[tuple]]:
        """A few rows of ``filename`` in ``table``: (column names, rows)."""
        return self.select(f"SELECT * FROM {table} WHERE filename = ? LIMIT {int(limit)}", [filename])

    def duplicate_ids(self, schema: TripSchema, filenames: list[str]) -> int:
        """How many unique_row_ids appear more than once in silver: the whole table, where that
        is cheap; a backend billed by the bytes it reads (BigQuery) looks where a repeat of the
        ids of ``filenames`` can be."""
        return self.duplicated_values(f"silver.{schema.table}", "unique_row_id")

    def duplicated_values(self, table: str, column: str) -> int:
        """How many values of ``column`` appear more than once in the whole ``table``."""
        # The subquery's alias is required before PostgreSQL 16.
        return self.query(f"SELECT count(*) FROM (SELECT {column} FROM {table} "
                          "GROUP BY 1 HAVING count(*) > 1) AS repeated")[0][0]

    # -- bronze ----------------------------------------------------------------------------------
    def load_bronze(self, schema: TripSchema, partition: str, filename: str, path: str,
                    max_quarantine_fraction: float = 0.01, *, gate: Gate | None = None,
                    deliberate: bool = False, published_rows: int | None = None) -> BronzeResult:
        """Land ``filename`` (the local file at ``path``), judge it, and publish it as the month's
        bronze load (see the module docstring). ``gate``: the Great Expectations bronze suite
        on the landed load; ``deliberate``: accept a file the plausibility rules would refuse;
        ``published_rows``: how many rows the publisher says the file has, when known."""
        contract = FileContract.of(path, schema, filename=filename, partition=partition)
        with layouts.mapped_onto_contract(path, contract, schema, filename=filename, partition=partition) \
                as (landed, contract, layout), self._month_lock(schema, partition), self.session():
            self._prepare_bronze(schema, contract.unknown)
            self._discard_unpublished(schema, partition)  # what a crashed load left
            load_id = uuid.uuid4().hex
            try:
                self._land(schema, filename, str(landed), contract, load_id, partition)
                profile = self._profile(schema, partition, filename, load_id)
                self._judge(schema, partition, filename, profile, max_quarantine_fraction, deliberate,
                            published_rows)
                refused = gate(load_id) if gate else None
                if refused:
                    raise errors.refused_by_gate(filename, partition, refused)
                before = self.published_load(schema, partition)
                self._publish(schema, partition, filename, load_id, profile.rows, profile.untypable_rows)
            except BaseException:
                self._discard_load(schema, filename, load_id)
                raise
        replaced = [before.filename] if before else []
        # an older layout's own columns are known: kept in bronze beside the contract's
        unknown = [c for c in contract.unknown if not layout or c not in layout.kept]
        return BronzeResult(filename, profile.rows, unknown, replaced,
                            layout=layout.report if layout else None)

    def _judge(self, schema: TripSchema, partition: str, filename: str, profile: IncomingProfile,
               max_fraction: float, deliberate: bool, published_rows: int | None) -> None:
        """The gate's own rules (everything but the GX suite), on the landed load's profile."""
        rows = profile.rows
        if rows == 0:
            raise errors.no_trip_rows(filename, partition)
        if profile.untypable_rows / rows > max_fraction:
            raise errors.too_many_untypable(filename, partition, rows, profile.untypable_rows,
                                            profile.untypable_by_column, max_fraction)
        if deliberate:
            return
        if published_rows and rows < MIN_SHARE_OF_PUBLISHED * published_rows:
            raise errors.below_published(filename, partition, rows, published_rows)
        loaded = self.published_load(schema, partition)
        if loaded and loaded.rows and rows < MIN_SHARE_OF_LOADED * loaded.rows:
            raise errors.far_fewer_rows(filename, partition, rows, loaded.rows, loaded.filename,
                                        MIN_SHARE_OF_LOADED)
        if rows >= MIN_ROWS_TO_JUDGE_PICKUPS and profile.pickups_in_month < MIN_PICKUPS_IN_MONTH * rows:
            raise errors.pickups_outside_month(filename, partition, rows, profile.pickups_in_month,
                                               schema.pickup, MIN_PICKUPS_IN_MONTH)

    def published_load(self, schema: TripSchema, partition: str) -> PublishedLoad | None:
        """The load bronze holds for the month, if any."""
        try:
            found = self.query(f"SELECT filename, load_id, rows FROM bronze.{schema.table}_loads WHERE month = ?",
                               [partition])
        except Exception:  # noqa: BLE001  no bronze yet
            return None
        return PublishedLoad(partition, *found[0]) if found else None

    @staticmethod
    def _month_text_bounds(partition: str) -> tuple[str, str]:
        """The month as text bounds: a landed timestamp (``YYYY-MM-DD HH:MM:SS``) is in the
        month when ``start <= text < end``, compared as text, before any typing."""
        start, end = month_bounds(partition)
        return start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")

    # backend hooks: bronze
    @contextlib.contextmanager
    def _month_lock(self, schema: TripSchema, partition: str) -> Iterator[None]:
        """Writers of one month take turns for the whole load (land, gate, publish)."""
        yield

    def _prepare_bronze(self, schema: TripSchema, extra_columns: list[str]) -> None:
        """Create bronze's tables and view if missing (migrating an earlier layout), with a
        text column for each of ``extra_columns`` (columns a file has that the contract lacks)."""
        raise NotImplementedError

    def _land(self, schema: TripSchema, filename: str, path: str, contract: FileContract, load_id: str,
              partition: str) -> None:
        """Every row of the file into the landed table under ``load_id`` (committed)."""
        raise NotImplementedError

    def _profile(self, schema: TripSchema, partition: str, filename: str, load_id: str) -> IncomingProfile:
        raise NotImplementedError

    def _publish(self, schema: TripSchema, partition: str, filename: str, load_id: str, rows: int,
                 untypable_rows: int | None = None) -> None:
        """One transaction: ``load_id`` becomes the month's load, the month's earlier loads go.
        ``untypable_rows``: what the gate counted, for a backend whose silver can use it."""
        raise NotImplementedError

    def _discard_load(self, schema: TripSchema, filename: str, load_id: str) -> None:
        raise NotImplementedError

    def _discard_unpublished(self, schema: TripSchema, partition: str) -> None:
        """Drop landed rows of the month's files that belong to no published load."""
        raise NotImplementedError

    # -- silver ----------------------------------------------------------------------------------
    def build_silver(self, schema: TripSchema, partition: str, filename: str | None = None,
                     max_quarantine_fraction: float = 0.01) -> SilverResult:
        """The month's bronze load typed, keyed and deduplicated into silver, replacing the
        month's rows (whatever their file) in one transaction. ``filename``, when given, must be
        the file bronze holds for the month."""
        load = self.published_load(schema, partition)
        if load is None or (filename and load.filename != filename):
            what = filename or f"partition {partition}'s file"
            raise errors.BadInputError(
                f"{what} (partition {partition}) is not in bronze.{schema.table}: materialize "
                f"bronze/{schema.table} for {partition} first (select '*silver/{schema.table}' "
                "to run the upstream layers in the same run).", file=filename, partition=partition)
        return self._build_silver(schema, partition, load, max_quarantine_fraction)

    def _build_silver(self, schema: TripSchema, partition: str, load: PublishedLoad,
                      max_quarantine_fraction: float) -> SilverResult:
        raise NotImplementedError

    def silver_file(self, schema: TripSchema, partition: str) -> str | None:
        """The file silver holds the month's rows of (None when it holds none)."""
        names = schema.month_files(partition)
        try:
            found = self.query(f"SELECT DISTINCT filename FROM silver.{schema.table} "
                               f"WHERE filename IN ({', '.join('?' for _ in names)})", names)
        except Exception:  # noqa: BLE001  no silver yet
            return None
        return found[0][0] if found else None

    # -- row reconciliation (taxi_platform/checks/reconciliation.py) ------------------------------
    def file_row_counts(self, schema: TripSchema, filename: str) -> FileRowCounts:
        """The rows of ``filename`` in bronze, silver and silver's quarantine, counted now."""
        t = schema.table
        (bronze, silver, quarantined), = self.query(
            f"SELECT (SELECT count(*) FROM bronze.{t} WHERE filename = ?), "
            f"(SELECT count(*) FROM silver.{t} WHERE filename = ?), "
            f"(SELECT count(*) FROM silver.{t}_quarantine WHERE filename = ?)", [filename] * 3)
        return FileRowCounts(bronze, silver, quarantined)

    def silver_rows_by_file(self, schema: TripSchema, filenames: list[str]) -> dict[str, int]:
        """{filename: rows in silver} for those of ``filenames`` silver holds rows of."""
        return self._rows_by_file(f"silver.{schema.table}", filenames)

    def gold_rows_by_file(self, filenames: list[str]) -> dict[str, int]:
        """{filename: rows in gold.fct_trips} for those of ``filenames`` it holds rows of."""
        return self._rows_by_file("gold.fct_trips", filenames)

    def _rows_by_file(self, table: str, filenames: list[str]) -> dict[str, int]:
        marks = ", ".join("?" for _ in filenames)
        return dict(self.query(f"SELECT filename, count(*) FROM {table} WHERE filename IN ({marks}) "
                               "GROUP BY filename", list(filenames)))
