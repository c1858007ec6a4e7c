"""The self-hosted warehouse: PostgreSQL (``TAXI_WAREHOUSE=postgres``), 15 and later.

Connection: ``TAXI_PG_DSN`` (a libpq URL or key=value string), else libpq's standard ``PG*``
variables (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``, ...). The DSN is
read when connecting, so a password never lands in Dagster's run config, and an error that
would echo it is raised with it masked.

The port's steps (taxi_platform/warehouse/port.py) in PostgreSQL's own SQL:

- landing: ``COPY ... FROM STDIN`` into ``bronze.<table>_landed``, fed with the CSV gunzipped on
  the fly, or with a Parquet file read a batch at a time and written as CSV text
  (taxi_platform/files.py:ParquetAsCsv: PostgreSQL has no Parquet reader, and the month is never
  all in memory). The identity column ``line_number`` records file order (silver keeps the first
  of each id *in file order*); ``filename`` and ``load_id`` come from transaction-local settings.
  A load's rows are found through BRIN indexes (a COPY writes them together; a b-tree entry per
  row cost a third of the COPY), and the load is analyzed so that scans of it are planned for its
  size. ``bronze.<table>`` is a view of the published loads with the file's columns plus
  ``filename``: the same bronze as DuckDB.
- the gate's profile: one pass reading every value the quick way (quick_typing.py), the careful
  count of untypable values only when that pass gives up.
- silver: typed, keyed and deduplicated in one sort by id (the quick way; the careful way,
  sql.py, when it gives up); ids unique table-wide (a unique index guards it). A table holding
  no other file's rows (a first load) gets them without its indexes, which are built afterwards
  over rows already in id order (much cheaper than 7 million index insertions; readers of the
  table wait for that load's commit); otherwise they go in in id order, ``ON CONFLICT DO
  NOTHING`` keeping the ids of earlier months' files.
- every write is one transaction and a dropped connection rolls it back; writers of one month
  take turns on a session advisory lock for the whole load (land, gate, publish), silver writers
  of one table on a transaction lock (a month's ids may move between files).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import psycopg2
import psycopg2.errors
from dagster import get_dagster_logger
from pydantic import Field

from taxi_platform import errors, files
from taxi_platform.files import FileContract
from taxi_platform.partitions import month_bounds
from taxi_platform.schemas import KEY_AMOUNTS, REASON_TYPES, TEXT, TripSchema
from taxi_platform.secrets import mask_dsn, redact
from taxi_platform.warehouse.port import IncomingProfile, PublishedLoad, SilverResult, WarehouseResource
from taxi_platform.warehouse.postgres.quick_typing import quick_gate_sql, quick_keyed_sql
from taxi_platform.warehouse.postgres.sql import (
    FALLBACK_FUNCTIONS,
    SQL_TYPES,
    decimal,
    fallback_name,
    month_counts,
    qmark_to_pyformat,
    typed,
    unique_row_id_sql,
    untypable,
)

_DDL_LOCK = "taxi_platform ddl"
_COPY_CHUNK = 1 << 20
# Settings of the load's own transaction (SET LOCAL): memory for the sort of a month's rows by
# id (parallel workers get as much each) and for building silver's indexes after a first load;
# a parallel plan for the typing pass, which the planner otherwise rejects because it counts
# moving a row between processes dearer than typing it; ISO output for the timestamp
# round-trip check (only the output part: the input order, DMY or MDY, stays the server's).
_TRANSACTION_SETTINGS = {
    "work_mem": "128MB",
    "maintenance_work_mem": "256MB",
    "parallel_tuple_cost": "0.001",
    "datestyle": "ISO",
    # float8 as text is its shortest round-trip form (the id of an amount of 1e34 or more)
    "extra_float_digits": "1",
}
_QUICK = "taxi_quick_typing"  # the savepoint of the quick typing pass
_COPY = "taxi_copy"  # the savepoint of a file's COPY
_PG_VARIABLES = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
                 "dbname": "PGDATABASE"}


class _ReadErrors:
    """A reader that remembers the exception its ``read`` raised: psycopg2 reports an error
    in the file as the server's QueryCanceled, and a broken gzip is bad input, not a retry."""

    def __init__(self, stream):
        self.stream, self.error = stream, None

    def read(self, size: int = -1) -> bytes:
        try:
            return self.stream.read(size)
        except BaseException as exc:
            self.error = exc
            raise


class PostgresConnectionError(ConnectionError):
    """The server could not be reached or refused us; the message never shows a password."""


class PostgresWarehouseResource(WarehouseResource):
    """A PostgreSQL database holding the schemas ``bronze`` and ``silver`` (and dbt's)."""

    # The DSN, password included, is an EnvVar: the UI shows "TAXI_PG_DSN", never the value.
    ENV_FIELDS: ClassVar[dict[str, str]] = {"dsn": "TAXI_PG_DSN"}

    dsn: str = Field(default="", description="libpq DSN; empty: TAXI_PG_DSN, else the PG* variables")
    lock_timeout_seconds: float = Field(default=1800.0,
                                        description="how long a writer waits for another writer of the same month")
    application_name: str = Field(default="taxi_platform")
    force_cast_functions: bool = Field(
        default=False, description="test the casts with plpgsql functions even on PostgreSQL >= 16")

    # -- what the other layers ask ----------------------------------------------------------
    @property
    def name(self) -> str:
        return "postgres"

    def gx_url(self) -> str:
        # psycopg2 gets the resource's DSN (a libpq URL or key=value string) as it is; with none,
        # libpq reads the PG* variables when connecting, as the warehouse resource does.
        dsn = self.resolved_dsn()
        query = urlencode({**({"dsn": dsn} if dsn else {}), "application_name": f"{self.application_name}_gx"},
                          quote_via=quote)
        return f"postgresql+psycopg2:///?{query}"

    def dbt_env(self) -> dict[str, str]:
        """profiles.yml's postgres target reads the PG* variables: from the DSN, when there is one."""
        variables = super().dbt_env()
        dsn = self.resolved_dsn()
        if dsn:
            from psycopg2.extensions import parse_dsn

            for key, value in parse_dsn(dsn).items():
                if key in _PG_VARIABLES:
                    variables[_PG_VARIABLES[key]] = value
        return variables

    def secrets(self) -> list[str]:
        """What must never be shown: the DSN (it may carry a password) and PGPASSWORD."""
        return [v for v in (self.resolved_dsn(), os.environ.get("PGPASSWORD")) if v]

    def resolved_dsn(self) -> str:
        return self.dsn or os.environ.get("TAXI_PG_DSN") or ""

    # -- connections -------------------------------------------------------------------------
    def _open(self):
        """A new connection. libpq echoes a malformed DSN whole in its error, password included:
        the error is raised again with the DSN masked, not chained to the original."""
        try:
            return psycopg2.connect(self.resolved_dsn(), application_name=self.application_name)
        except psycopg2.Error as exc:
            where = mask_dsn(self.resolved_dsn()) or "the PG* variables (PGHOST, PGPORT, ...)"
            raise PostgresConnectionError(
                f"could not connect to PostgreSQL with {where}: "
                f"{redact(str(exc).strip(), self.secrets())}. Check TAXI_PG_DSN or the PG* variables.") from None

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        """A connection in a transaction; committed when the block ends, rolled back on error."""
        conn = self._open()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('lock_timeout', %s, false)",
                            [f"{int(self.lock_timeout_seconds * 1000)}ms"])
            yield conn
            conn.commit()
        except BaseException:
            if not conn.closed:
                with contextlib.suppress(psycopg2.Error):
                    conn.rollback()
            raise
        finally:
            conn.close()

    def _modern(self, conn) -> bool:
        return conn.server_version >= 160000 and not self.force_cast_functions

    @staticmethod
    def _tune(cur) -> None:
        """This transaction's settings (``_TRANSACTION_SETTINGS``), undone when it ends."""
        cur.execute("SELECT " + ", ".join("set_config(%s, %s, true)" for _ in _TRANSACTION_SETTINGS),
                    [v for item in _TRANSACTION_SETTINGS.items() for v in item])

    @staticmethod
    def _lock(cur, table: str, key: str = "", shared: bool = False) -> None:
        """Wait for, then hold until the transaction ends, the advisory lock of a table's ``key``."""
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        cur.execute(f"SELECT {fn}(hashtext(%s), hashtext(%s))", [table, key])

    # -- SQL -------------------------------------------------------------------------------------
    def select(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Run SQL; ``?`` placeholders as on every backend."""
        with self.connect() as conn, conn.cursor() as cur:
            if params:
                cur.execute(qmark_to_pyformat(sql), list(params))
            else:
                cur.execute(sql)
            if not cur.description:
                return [], []
            return [d[0] for d in cur.description], cur.fetchall()

    def describe(self, table: str) -> list[tuple[str, str]]:
        schema, _, name = table.rpartition(".")
        return self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema or "public", name])

    def duplicate_ids(self, schema: TripSchema, filenames: list[str]) -> int:
        """0 without reading the table while silver's unique index on unique_row_id is in place
        and valid: PostgreSQL has refused every repeat (the column is NOT NULL, so no NULLs slip
        past it), and silver is only ever written with it (a first load builds it over the rows
        it inserted, and fails if any id repeats). Counting instead, a GROUP BY over the whole
        table, took 7 s of a 7M-row month's silver step and grew with every month loaded. Without
        the index (dropped by hand), counted as on any backend."""
        enforced = self.query(
            "SELECT count(*) FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid "
            "AND a.attnum = x.indkey[0] WHERE x.indrelid = to_regclass(?) AND x.indisunique "
            "AND x.indisvalid AND x.indnkeyatts = 1 AND x.indexprs IS NULL AND x.indpred IS NULL "
            "AND a.attname = 'unique_row_id' AND a.attnotnull", [f"silver.{schema.table}"])[0][0]
        return 0 if enforced else super().duplicate_ids(schema, filenames)

    # -- DDL -------------------------------------------------------------------------------------
    def ensure_tables(self, schema: TripSchema) -> None:
        self._ensure_tables(schema)

    def _ensure_tables(self, schema: TripSchema, extra_columns: list[str] = ()) -> None:
        """Create schemas, tables, view and helper functions if missing (migrating the layout of
        earlier versions, adding columns new to the contract or to a file), in a transaction of
        their own (serialized: concurrent CREATE ... IF NOT EXISTS can collide)."""
        landed, loads = f"bronze.{schema.table}_landed", f"bronze.{schema.table}_loads"
        silver, quarantine = f"silver.{schema.table}", f"silver.{schema.table}_quarantine"
        wanted = [*schema.sql_names, *extra_columns]
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL "
                        "AND to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL", [landed, loads, silver,
                                                                                           quarantine])
            if cur.fetchone()[0]:
                cur.execute("SELECT table_name, column_name FROM information_schema.columns WHERE "
                            "(table_schema, table_name) IN (('bronze', %s), ('silver', %s), ('silver', %s))",
                            [f"{schema.table}_landed", schema.table, f"{schema.table}_quarantine"])
                have: dict[str, set] = {}
                for table_name, column in cur.fetchall():
                    have.setdefault(table_name, set()).add(column)
                if (set(wanted) <= have.get(f"{schema.table}_landed", set())
                        and set(schema.sql_names) <= have.get(schema.table, set())
                        and set(schema.sql_names) <= have.get(f"{schema.table}_quarantine", set())):
                    return  # all there: no catalog writes, no locks
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_DDL_LOCK])
            cur.execute("CREATE SCHEMA IF NOT EXISTS bronze")
            cur.execute("CREATE SCHEMA IF NOT EXISTS silver")
            for pg_type, target in FALLBACK_FUNCTIONS.items():
                cur.execute(
                    f"CREATE OR REPLACE FUNCTION {fallback_name(pg_type)}(value text) RETURNS boolean "
                    "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$ BEGIN "
                    f"PERFORM value::{target}; RETURN true; "
                    "EXCEPTION WHEN others THEN RETURN false; END $f$")
            # Line numbers come to a COPY in blocks of 1000 (each block after the one before,
            # so still in file order; gaps between loads do not matter).
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {landed} ("
                "line_number bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000), "
                f"{', '.join(f'{_q(c)} text' for c in schema.sql_names)}, "
                "filename text NOT NULL DEFAULT current_setting('taxi.filename'))")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {loads} (month text PRIMARY KEY, filename text NOT NULL, "
                        "load_id text NOT NULL, rows bigint NOT NULL, published_at timestamptz DEFAULT now())")
            cur.execute(f"ALTER TABLE {landed} ADD COLUMN IF NOT EXISTS load_id text "
                        "DEFAULT current_setting('taxi.load_id', true)")
            # Rows landed by a version without loads: each file's rows are its published load.
            cur.execute(f"UPDATE {landed} SET load_id = 'before-' || filename WHERE load_id IS NULL")
            cur.execute(f"INSERT INTO {loads} (month, filename, load_id, rows) "
                        f"SELECT substr(filename, strpos(filename, '_tripdata_') + 10, 7), filename, load_id, count(*) "
                        f"FROM {landed} WHERE load_id LIKE 'before-%' GROUP BY filename, load_id "
                        "ON CONFLICT (month) DO NOTHING")
            for column in wanted:
                cur.execute(f"ALTER TABLE {landed} ADD COLUMN IF NOT EXISTS {_q(column)} text")
            # A load's rows are found through BRIN indexes (min and max of each range of blocks):
            # a COPY writes a load together, so a range holds one load, or two at a boundary.
            cur.execute(f"CREATE INDEX IF NOT EXISTS {schema.table}_landed_file_brin ON {landed} USING brin (filename)")
            cur.execute(f"CREATE INDEX IF NOT EXISTS {schema.table}_landed_load_brin ON {landed} USING brin (load_id)")
            cur.execute(f"COMMENT ON TABLE {landed} IS 'Rows of each file as landed, with their order in the "
                        f"file and their load; read bronze.{schema.table}, the view of the published loads.'")
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'bronze' "
                        "AND table_name = %s ORDER BY ordinal_position", [f"{schema.table}_landed"])
            shown = [c for (c,) in cur.fetchall() if c not in ("line_number", "filename", "load_id")]
            cur.execute(f"DROP VIEW IF EXISTS bronze.{schema.table}")
            cur.execute(f"CREATE VIEW bronze.{schema.table} AS SELECT {', '.join(_q(c) for c in shown)}, filename "
                        f"FROM {landed} WHERE load_id IN (SELECT load_id FROM {loads})")
            typed_cols = ", ".join(f"{_q(c.sql_name)} {SQL_TYPES[c.type]}" for c in schema.columns)
            cur.execute(f"CREATE TABLE IF NOT EXISTS {silver} "
                        f"(unique_row_id text NOT NULL, filename text NOT NULL, {typed_cols})")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {quarantine} (filename text, line_number bigint, reason text, "
                        f"{', '.join(f'{_q(c)} text' for c in schema.sql_names)})")
            for c in schema.columns:  # columns that joined the contract later: NULL for loaded months
                cur.execute(f"ALTER TABLE {silver} ADD COLUMN IF NOT EXISTS {_q(c.sql_name)} {SQL_TYPES[c.type]}")
                cur.execute(f"ALTER TABLE {quarantine} ADD COLUMN IF NOT EXISTS {_q(c.sql_name)} text")
            for ddl in _silver_index_ddl(schema):
                cur.execute(ddl)

    # -- bronze ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _month_lock(self, schema: TripSchema, partition: str) -> Iterator[None]:
        """A session advisory lock on one connection, held while the month is loaded."""
        conn = self._open()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                # (its own key: the publish and silver's read take transaction locks on the month)
                cur.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))",
                            [f"bronze.{schema.table} load", partition])
            yield
        finally:
            conn.close()  # releases the lock

    def _prepare_bronze(self, schema: TripSchema, extra_columns: list[str]) -> None:
        self._ensure_tables(schema, extra_columns)

    def _land(self, schema: TripSchema, filename: str, path: str, contract: FileContract, load_id: str,
              partition: str) -> None:
        landed = f"bronze.{schema.table}_landed"
        columns = ", ".join(_q(column) for _, column in contract.columns)
        try:
            with self.connect() as conn, conn.cursor() as cur:
                self._tune(cur)
                cur.execute("SELECT set_config('taxi.filename', %s, true), set_config('taxi.load_id', %s, true)",
                            [filename, load_id])
                cur.execute(f"SAVEPOINT {_COPY}")
                try:
                    rows = self._copy(cur, landed, columns, path, contract)
                except psycopg2.DataError:
                    if contract.format == files.PARQUET or not files.has_mixed_line_endings(path):
                        raise
                    # Some lines end with CRLF, others with LF (a real published file does
                    # this), which COPY refuses: the file is sent again with LF throughout.
                    cur.execute(f"ROLLBACK TO SAVEPOINT {_COPY}")
                    rows = self._copy(cur, landed, columns, path, contract, normalize_line_endings=True)
                # Statistics of the new rows, so that the scans of this load (the gate, silver's
                # typing pass) are planned for their size (in parallel) rather than for the few
                # rows a table without statistics is assumed to hold.
                cur.execute(f"ANALYZE {landed} (filename, load_id)")
                for index in ("file", "load"):
                    self._summarize(cur, f"bronze.{schema.table}_landed_{index}_brin", unless_rows=rows)
        except (psycopg2.DataError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise errors.BadInputError(
                f"{filename} (partition {partition}) could not be loaded into bronze.{schema.table}: "
                f"{str(exc).strip().splitlines()[0]}. The file is probably truncated or malformed: "
                "re-materialize its raw and lake assets; if it persists, the source file "
                "itself is bad.", file=filename, partition=partition) from None

    @staticmethod
    def _copy(cur, landed: str, columns: str, path: str, contract: FileContract,
              normalize_line_endings: bool = False) -> int:
        """COPY the file into ``landed``: a CSV gunzipped on the fly, a Parquet file as CSV text
        a batch at a time; returns the rows written."""
        with contextlib.ExitStack() as stack:
            if contract.format == files.PARQUET:
                stream = stack.enter_context(files.ParquetAsCsv(path, [name for name, _ in contract.columns]))
                header = "false"
            else:
                stream = stack.enter_context(files.open_binary(path))
                if normalize_line_endings:
                    stream = files.LineEndingsNormalized(stream)
                header = "true"
            reader = _ReadErrors(stream)
            try:
                cur.copy_expert(
                    f"COPY {landed} ({columns}) FROM STDIN WITH "
                    f"(FORMAT csv, HEADER {header}, DELIMITER ',', QUOTE '\"', ESCAPE '\"')",
                    reader, size=_COPY_CHUNK)
            except psycopg2.errors.QueryCanceled:
                if reader.error is not None:
                    raise reader.error from None
                raise
        return cur.rowcount

    @staticmethod
    def _summarize(cur, index: str, unless_rows: int | None = None) -> None:
        """Summarize the block ranges written since the last summary in the BRIN ``index``
        (when there is one, and we own it), so that reading another load skips them from now
        on. Not when its table holds (almost) only ``unless_rows`` rows, the new ones: there is
        nothing to skip, and the next load summarizes these ranges with its own."""
        cur.execute("SELECT i.oid, t.reltuples FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid "
                    "JOIN pg_class t ON t.oid = x.indrelid "
                    "WHERE i.oid = to_regclass(%s) AND pg_has_role(i.relowner, 'USAGE')", [index])
        found = cur.fetchone()
        if found and (unless_rows is None or found[1] > 1.1 * unless_rows):
            cur.execute("SELECT brin_summarize_new_values(%s::regclass)", [found[0]])

    def _profile(self, schema: TripSchema, partition: str, filename: str, load_id: str) -> IncomingProfile:
        landed = f"bronze.{schema.table}_landed"
        start, end = self._month_text_bounds(partition)
        with self.connect() as conn, conn.cursor() as cur:
            self._tune(cur)
            modern = self._modern(conn)
            # The quick way (one cast per value): when it reads every value, no row is untypable.
            cur.execute(f"SAVEPOINT {_QUICK}")
            try:  # (counting the rows and the pickups in the month in the same pass)
                cur.execute(quick_gate_sql(schema, landed), [start, end, load_id])
                rows, in_month, _ = cur.fetchone()
                cur.execute(f"RELEASE SAVEPOINT {_QUICK}")
                bad = 0
            except psycopg2.DataError:
                cur.execute(f"ROLLBACK TO SAVEPOINT {_QUICK}")
                any_bad = " OR ".join(f"({untypable(c.sql_name, c.type, modern)})" for c in schema.columns)
                cur.execute(f"SELECT {month_counts(_q(schema.pickup))}, count(*) FILTER (WHERE {any_bad}) "
                            f"FROM {landed} WHERE load_id = %s", [start, end, load_id])
                rows, in_month, bad = cur.fetchone()
            by_column = self._untypable_by_column(cur, schema, load_id, modern) if bad else []
        return IncomingProfile(rows, bad, in_month, by_column)

    def _publish(self, schema: TripSchema, partition: str, filename: str, load_id: str, rows: int,
                 untypable_rows: int | None = None) -> None:
        landed, loads = f"bronze.{schema.table}_landed", f"bronze.{schema.table}_loads"
        with self.connect() as conn, conn.cursor() as cur:
            # Silver reads the month's load under a shared lock: it never sees the swap half-done.
            self._lock(cur, f"bronze.{schema.table}", partition)
            cur.execute(f"DELETE FROM {landed} WHERE filename = ANY(%s) AND load_id <> %s",
                        [schema.month_files(partition), load_id])
            cur.execute(f"INSERT INTO {loads} (month, filename, load_id, rows) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (month) DO UPDATE SET filename = excluded.filename, load_id = excluded.load_id, "
                        "rows = excluded.rows, published_at = now()", [partition, filename, load_id, rows])

    def _discard_load(self, schema: TripSchema, filename: str, load_id: str) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DELETE FROM bronze.{schema.table}_landed WHERE load_id = %s", [load_id])

    def _discard_unpublished(self, schema: TripSchema, partition: str) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DELETE FROM bronze.{schema.table}_landed l WHERE filename = ANY(%s) AND NOT EXISTS "
                        f"(SELECT 1 FROM bronze.{schema.table}_loads p WHERE p.load_id = l.load_id)",
                        [schema.month_files(partition)])

    def _untypable_by_column(self, cur, schema: TripSchema, load_id: str, modern: bool,
                             only_bad: bool = False) -> list[tuple[str, int, str]]:
        """(column, rows, an example value) for every column with text that cannot be typed.
        ``only_bad``: read only the rows in _bad (where all such text is)."""
        counts = ", ".join(
            f"count(*) FILTER (WHERE {untypable(c.sql_name, c.type, modern)}), "
            f"min({c.sql_name}) FILTER (WHERE {untypable(c.sql_name, c.type, modern)})"
            for c in schema.columns)
        where = " AND line_number IN (SELECT line_number FROM _bad)" if only_bad else ""
        cur.execute(f"SELECT {counts} FROM bronze.{schema.table}_landed WHERE load_id = %s{where}", [load_id])
        row = cur.fetchone()
        return [(c.sql_name, row[2 * i], repr(row[2 * i + 1]))
                for i, c in enumerate(schema.columns) if row[2 * i]]

    # -- silver ----------------------------------------------------------------------------------
    def _build_silver(self, schema: TripSchema, partition: str, load: PublishedLoad,
                      max_quarantine_fraction: float) -> SilverResult:
        filename, load_id = load.filename, load.load_id
        landed = f"bronze.{schema.table}_landed"
        silver, quarantine = f"silver.{schema.table}", f"silver.{schema.table}_quarantine"
        silver_cols = ", ".join(_q(c) for c in schema.sql_names)
        pickup = _q(schema.pickup)
        start, end = month_bounds(partition)
        month_files = schema.month_files(partition)
        self._ensure_tables(schema)

        with self.connect() as conn, conn.cursor() as cur:
            modern = self._modern(conn)
            # Silver's ids may move between files (an earlier month owns them), so silver
            # writers of one table take turns; the bronze month is held (shared) while read.
            self._lock(cur, silver)
            self._lock(cur, f"bronze.{schema.table}", partition, shared=True)
            self._tune(cur)
            rows_in = load.rows
            # _silver: the load's typable rows, the first of each id in file order, sorted by
            # id. Typed, checked and hashed in one pass the quick way; the careful way when
            # that pass gives up on a value (see the module docstring).
            distinct = self._quick_silver(cur, schema, landed, load_id, modern)
            bad, reasons_summary = 0, []
            if distinct is None:
                bad, reasons_summary, distinct = self._careful_silver(
                    cur, schema, partition, filename, load_id, modern, max_quarantine_fraction)
            good = rows_in - bad
            cur.execute(f"DELETE FROM {quarantine} WHERE filename = ANY(%s)", [month_files])
            if bad:
                raw = ", ".join(f"l.{_q(c)}" for c in schema.sql_names)
                cur.execute(f"INSERT INTO {quarantine} (filename, line_number, reason, {silver_cols}) "
                            f"SELECT %s, b.file_line, b.reason, {raw} "
                            f"FROM _bad b JOIN {landed} l ON l.line_number = b.line_number "
                            "WHERE l.load_id = %s ORDER BY b.file_line", [filename, load_id])
            # The month's rows, whatever file they came from (a month is one partition).
            cur.execute(f"DELETE FROM {silver} WHERE filename = ANY(%s)", [month_files])
            # Other files' rows, through the filename index whatever the statistics say (a
            # scan of the table finding none would read all of it).
            cur.execute("SELECT set_config('enable_seqscan', 'off', true)")
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {silver} WHERE filename < %s), "
                        f"EXISTS (SELECT 1 FROM {silver} WHERE filename > %s)", [filename, filename])
            earlier, later = cur.fetchone()
            cur.execute("SELECT set_config('enable_seqscan', 'on', true)")
            insert = (f"INSERT INTO {silver} (unique_row_id, filename, {silver_cols}) "
                      f"SELECT unique_row_id, %s, {silver_cols} FROM _silver")
            if not earlier and not later:
                # No other file's rows (a first load): no id can belong to another file, and
                # the indexes are built once, over rows already in id order, rather than
                # updated for each row (a b-tree on filename left by an earlier version is
                # replaced by the BRIN index too).
                cur.execute(f"DROP INDEX IF EXISTS {', '.join(_silver_index_names(schema))}")
                cur.execute(insert, [filename])
                for ddl in _silver_index_ddl(schema):
                    cur.execute(ddl)
            else:
                # An id already owned by an earlier month's file stays there (whatever the
                # load order); a later file holding one of ours gives it up (first, so that
                # the unique index never sees the id twice).
                if later:
                    cur.execute("ANALYZE _silver")
                    cur.execute(f"DELETE FROM {silver} s USING _silver k WHERE s.unique_row_id = "
                                'k.unique_row_id COLLATE "default" AND s.filename > %s', [filename])
                cur.execute(insert + " ON CONFLICT (unique_row_id) DO NOTHING", [filename])
                self._summarize(cur, f"silver.{_silver_brin(schema)}")
            cur.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {pickup} < %s OR {pickup} >= %s) "
                f"FROM {silver} WHERE filename = %s", [start, end, filename])
            rows_out, outside = cur.fetchone()
        if bad:
            get_dagster_logger().warning(f"{filename}: {bad} rows quarantined in {quarantine}")
        return SilverResult(
            filename=filename, rows_in=rows_in, rows_out=rows_out,
            duplicates_collapsed=good - distinct, duplicates_in_other_files=distinct - rows_out,
            rows_quarantined=bad, quarantine_reasons=reasons_summary,
            pickups_outside_month=outside)

    @staticmethod
    def _first_of_each_id(keyed: str) -> str:
        """SQL creating _silver from ``keyed`` (unique_row_id in collation "C", line_number,
        silver columns): the first row of each id in file order, sorted by id. Collation "C"
        compares bytes: the same equality as any collation's, a much cheaper sort, and, being
        the id's own, no second md5 for the sort key (which would keep the sort in one
        process, too)."""
        return ("CREATE TEMP TABLE _silver ON COMMIT DROP AS SELECT DISTINCT ON (unique_row_id) * "
                f"FROM ({keyed}) k ORDER BY unique_row_id, line_number")

    def _quick_silver(self, cur, schema: TripSchema, landed: str, load_id: str, modern: bool) -> int | None:
        """_silver typed the quick way; the number of its rows (distinct ids), or None (and
        nothing changed) when some value needs the careful way."""
        cur.execute(f"SAVEPOINT {_QUICK}")
        try:
            cur.execute(self._first_of_each_id(quick_keyed_sql(schema, landed, modern)), [load_id])
        except psycopg2.DataError:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_QUICK}")
            return None
        distinct = cur.rowcount
        cur.execute(f"RELEASE SAVEPOINT {_QUICK}")
        return distinct

    def _careful_silver(self, cur, schema: TripSchema, partition: str, filename: str, load_id: str,
                        modern: bool, max_fraction: float) -> tuple[int, list[tuple[str, int, str]], int]:
        """The careful way, testing every cast first: _typed (every row: types, key decimals
        and the quarantine reason, NULL for a good row), _bad (its rows with a reason, and their
        line in the file) and _silver from the good rows; fails the month when too many rows
        cannot be typed. Returns (bad rows, reasons by column, distinct ids)."""
        landed = f"bronze.{schema.table}_landed"
        typed_names = ", ".join(_q(c) for c in schema.sql_names)
        typed_cols = ",\n  ".join(f"{typed(c.sql_name, c.type, modern)} AS {_q(c.sql_name)}"
                                  for c in schema.columns)
        decimals = ",\n  ".join(f"{decimal(c, modern)} AS {c}__dec" for c in KEY_AMOUNTS)
        dec_names = ", ".join(f"{c}__dec" for c in KEY_AMOUNTS)
        raw_cols = ",\n  ".join(f'{_q(c)} AS "{c}__raw"' for c in schema.sql_names)
        reasons = ", ".join(
            f"CASE WHEN {c.sql_name}__raw IS NOT NULL AND trim({c.sql_name}__raw) <> '' "
            f"AND {c.sql_name} IS NULL THEN '{c.sql_name}: cannot read ''' || "
            f"{c.sql_name}__raw || ''' as {REASON_TYPES[c.type]}' END"
            for c in schema.columns if c.type != TEXT)
        header_lines = 0 if filename.endswith(".parquet") else 1  # a CSV's line 1 is its header
        # Type once (OFFSET 0: each cast runs once however often the reasons read it).
        cur.execute(f"""
            CREATE TEMP TABLE _typed ON COMMIT DROP AS
            SELECT line_number, {typed_names}, {dec_names},
                   NULLIF(concat_ws('; ', {reasons}), '') AS reason FROM (
              SELECT line_number,
              {typed_cols},
              {decimals},
              {raw_cols}
              FROM {landed} WHERE load_id = %s OFFSET 0) t""", [load_id])
        cur.execute("SELECT count(*), count(reason) FROM _typed")
        rows, bad = cur.fetchone()
        reasons_summary = []
        if bad:
            # Line numbers in the file only for the rows that need one.
            cur.execute(f"""
                CREATE TEMP TABLE _bad ON COMMIT DROP AS SELECT line_number, file_line, reason FROM (
                  SELECT line_number, row_number() OVER (ORDER BY line_number) + {header_lines} AS file_line,
                         reason FROM _typed) t WHERE reason IS NOT NULL""")
            cur.execute("ANALYZE _bad")  # a few rows: looked up in landed, not the other way round
            reasons_summary = self._untypable_by_column(cur, schema, load_id, modern, only_bad=True)
        if rows and bad / rows > max_fraction:
            raise errors.too_many_untypable(filename, partition, rows, bad, reasons_summary, max_fraction)
        cur.execute(self._first_of_each_id(
            f'SELECT {unique_row_id_sql(schema)} COLLATE "C" AS unique_row_id, line_number, {typed_names} '
            "FROM _typed WHERE reason IS NULL"))
        return bad, reasons_summary, cur.rowcount


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _silver_brin(schema: TripSchema) -> str:
    return f"{schema.table}_filename_brin"


def _silver_index_names(schema: TripSchema) -> list[str]:
    """Silver's indexes, and the b-tree on filename earlier versions made."""
    return [f"silver.{schema.table}_unique_row_id", f"silver.{_silver_brin(schema)}",
            f"silver.{schema.table}_filename"]


def _silver_index_ddl(schema: TripSchema) -> list[str]:
    """Silver's indexes: ids unique table-wide, and a file's rows found by filename through a
    BRIN index (a load writes a file's rows together; a b-tree entry per row cost seconds)."""
    table = f"silver.{schema.table}"
    return [f"CREATE UNIQUE INDEX IF NOT EXISTS {schema.table}_unique_row_id ON {table} (unique_row_id)",
            f"CREATE INDEX IF NOT EXISTS {_silver_brin(schema)} ON {table} USING brin (filename)"]
