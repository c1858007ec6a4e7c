"""The self-hosted warehouse: PostgreSQL (``TAXI_WAREHOUSE=postgres``).

Connection: ``TAXI_PG_DSN`` (a libpq URL or key=value string), else libpq's standard ``PG*``
variables (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``, ...). The DSN is
read when connecting, so a password never lands in Dagster's run config.

Same semantics as the DuckDB reference (``duckdb_warehouse.py``), in PostgreSQL's own SQL:

- bronze: ``COPY ... FROM STDIN`` fed with the decompressed stream of the file (gzip is
  decompressed on the fly; no second copy on disk). COPY fills ``bronze.<table>_landed``,
  whose identity column ``line_number`` records file order (PostgreSQL keeps no insertion
  order, and silver keeps the first of each id *in file order*) and whose ``filename`` comes
  from a transaction-local setting. ``bronze.<table>`` is a view with exactly the file's
  columns plus ``filename``: the same bronze contract as DuckDB. A file's rows are found
  through a BRIN index on ``filename`` (a b-tree entry per row cost a third of the COPY), and
  the load analyzes ``filename`` so that scans of the new file are planned for its size.
- silver: typed with quarantine, ``unique_row_id = md5(...)`` computed in SQL to the shared
  contract (amounts through ``numeric``: half away from zero, never ``-0.00``; timestamps by
  ``to_char``); ids unique table-wide (a unique index guards it).
- typing, two ways with one result. The quick way (one pass: the typing gate, the types and the
  md5 together) vouches only for values whose type it can prove cheaply: plain casts, and
  timestamps that read back as exactly the text they came from. Any other value makes the
  pass fail with a data exception, inside a savepoint; the month is then typed the careful way
  (``pg_input_is_valid`` on every value, reasons for the quarantine), as before. Both ways give
  the same types and ids for every value the quick way accepts.
- silver's rows are deduplicated in one sort by id (a temp table); a table holding no other
  file's rows (a first load) gets them without its indexes, which are built again afterwards
  over rows already in id order (much cheaper than 7 million index insertions; readers of the
  table wait for that load's commit, as DROP INDEX locks it); otherwise they go in in id
  order, ``ON CONFLICT DO NOTHING`` keeping the ids of earlier months' files. Silver finds a
  file's rows through a BRIN index on ``filename`` too.
- every month's write is one transaction; two writers of the same month wait for each other
  on a transaction-level advisory lock (bronze: per table and file; silver: per table, since
  a month's ids may move between files), and a dropped connection rolls everything back.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import psycopg2
import psycopg2.errors
from dagster import get_dagster_logger
from pydantic import Field

from taxi_platform import files
from taxi_platform.errors import BadInputError
from taxi_platform.partitions import month_bounds
from taxi_platform.schemas import DOUBLE, INTEGER, TEXT, TIMESTAMP, TripSchema
from taxi_platform.secrets import mask_dsn, redact
from taxi_platform.warehouse import BronzeResult, SilverResult, WarehouseResource

_SQL_TYPES = {INTEGER: "integer", TIMESTAMP: "timestamp", DOUBLE: "double precision", TEXT: "text"}
# The type names quarantine reasons use: the same words on every backend.
_REASON_TYPES = {INTEGER: "INTEGER", TIMESTAMP: "TIMESTAMP", DOUBLE: "DOUBLE", TEXT: "VARCHAR"}
_KEY_AMOUNTS = ("fare_amount", "trip_distance")
# Text PostgreSQL reads as a number but DuckDB's DECIMAL does not (NaN, Infinity) is kept out
# of the key with this shape check; the cast itself is then checked by the server.
_DECIMAL_SHAPE = r"'^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$'"
# PostgreSQL reads 'now', 'today', 'Jan 1 2019' as timestamps; the files write YYYY-MM-DD.
_TIMESTAMP_SHAPE = r"'^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}'"
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
# A float8 is finite when it lies between the largest negative and positive ones (NaN sorts
# above every number in PostgreSQL, Infinity beyond the largest).
_FINITE = "BETWEEN '-1.7976931348623157e308'::float8 AND '1.7976931348623157e308'::float8"
_QUICK = "taxi_quick_typing"  # the savepoint of the quick typing pass
_COPY = "taxi_copy"  # the savepoint of a file's COPY

# Before PostgreSQL 16 (no pg_input_is_valid) a cast is tested by these functions instead.
_FALLBACK_FUNCTIONS = {
    "float8": "double precision",
    "timestamp": "timestamp",
    "numeric(38,4)": "numeric(38,4)",
}


def _fallback_name(pg_type: str) -> str:
    return "bronze.taxi_valid_" + re.sub(r"[^a-z0-9]+", "_", pg_type).strip("_")


def _valid(column: str, pg_type: str, modern: bool) -> str:
    """SQL: true when the text ``column`` casts to ``pg_type`` without error."""
    if modern:
        return f"pg_input_is_valid({column}, '{pg_type}')"
    return f"{_fallback_name(pg_type)}({column})"


def _typed(column: str, kind: str, modern: bool = True) -> str:
    """SQL turning the landed text ``column`` into its silver type (NULL when it cannot),
    accepting what DuckDB's TRY_CAST accepts for the files' values."""
    if kind == TEXT:
        return column
    if kind == INTEGER:  # whole numbers only: '1' and '1.0', not '1.5'
        f8 = f"{column}::float8"
        return (f"CASE WHEN {_valid(column, 'float8', modern)} THEN CASE WHEN {f8} = floor({f8}) "
                f"AND {f8} BETWEEN -2147483648 AND 2147483647 THEN {f8}::integer END END")
    if kind == DOUBLE:  # not NaN or Infinity, which float8 reads
        return (f"CASE WHEN {_valid(column, 'float8', modern)} THEN CASE WHEN {column}::float8 {_FINITE} "
                f"THEN {column}::float8 END END")
    if kind == TIMESTAMP:
        return (f"CASE WHEN {column} ~ {_TIMESTAMP_SHAPE} THEN CASE WHEN "
                f"{_valid(column, 'timestamp', modern)} THEN {column}::timestamp END END")
    raise ValueError(kind)


def _decimal(column: str, modern: bool = True) -> str:
    """The landed text as numeric(38,4) (as DuckDB's DECIMAL(38, 4): rounds half away from
    zero), or NULL."""
    return (f"CASE WHEN {column} ~ {_DECIMAL_SHAPE} THEN CASE WHEN "
            f"{_valid(column, 'numeric(38,4)', modern)} THEN {column}::numeric(38,4) END END")


def _untypable(column: str, kind: str, modern: bool = True) -> str:
    """SQL: true when the landed text of ``column`` is present but cannot become ``kind``."""
    if kind == TEXT:
        return "false"
    return f"({column} IS NOT NULL AND trim({column}) <> '' AND {_typed(column, kind, modern)} IS NULL)"


def _give_up(column: str, pg_type: str) -> str:
    """SQL of type ``pg_type`` that fails with a data exception (division by zero) when it is
    evaluated: how the quick typing pass gives up on a value it cannot vouch for. It reads
    ``column`` (never NULL where it is used) so that the planner cannot evaluate it ahead."""
    return f"(1 / (octet_length({column}) * 0))::text::{pg_type}"


def _quick_typed(column: str, kind: str) -> str:
    """The quick way to type: the landed text ``column`` as its silver type, equal to
    :func:`_typed`'s value, or a data exception where that needs the careful way. NULL and ''
    give NULL, and text the cast refuses raises. INTEGER: text both float8 and integer read
    is a whole number in range (hex too) and they agree on it; float8 refuses the forms only
    integer reads (1_000, 0o17, 0b1). TIMESTAMP: kept only when it prints back as exactly its
    text (``YYYY-MM-DD HH:MM:SS``, DateStyle ISO, 19 characters: four-digit years), which has
    ``_TIMESTAMP_SHAPE`` and which ``to_char`` gives back for the id; any other timestamp text
    (a date alone, fractions of seconds, 'now') gives up."""
    if kind == TEXT:
        return column
    if kind == DOUBLE:  # NaN and Infinity (text with an 'n') give up: they cannot be typed
        return (f"nullif({column}, '')::float8 * CASE WHEN strpos({column}, 'n') + strpos({column}, 'N') = 0 "
                f"THEN 1 ELSE {_give_up(column, 'float8')} END")
    if kind == INTEGER:
        return f"CASE WHEN nullif({column}, '')::float8 IS NOT NULL THEN {column}::integer END"
    if kind == TIMESTAMP:
        return (f"CASE WHEN nullif({column}, '') IS NULL THEN NULL "
                f"WHEN octet_length({column}) = 19 AND {column}::timestamp::text = {column} "
                f"THEN {column}::timestamp ELSE {_give_up(column, 'timestamp')} END")
    raise ValueError(kind)


def _quick_check(column: str, kind: str) -> str:
    """:func:`_quick_typed` when only its failing matters (one cast per timestamp)."""
    if kind != TIMESTAMP:
        return _quick_typed(column, kind)
    return (f"CASE WHEN nullif({column}, '') IS NULL THEN NULL "
            f"WHEN octet_length({column}) = 19 AND {column}::timestamp::text = {column} "
            f"THEN 0 ELSE {_give_up(column, 'integer')} END")


def _quick_key_text(column: str, kind: str, modern: bool = True) -> str:
    """A key column as hashed into unique_row_id, from its landed text, in a row that
    :func:`_quick_typed` vouches for: the same text as :func:`key_text_sql` gives from
    :func:`_typed`'s values. A timestamp's text is the landed text itself. An amount goes
    through numeric from its text, directly when float8 reads it as a finite number below
    1e30 and it is not hex (such text has ``_DECIMAL_SHAPE`` and fits numeric(38,4)), else
    by :func:`_decimal`."""
    if kind == TIMESTAMP:
        return f"coalesce({column}, '')"
    if column in _KEY_AMOUNTS:
        dec = (f"CASE WHEN nullif({column}, '')::float8 BETWEEN '-1e30'::float8 AND '1e30'::float8 "
               f"AND strpos({column}, 'x') = 0 AND strpos({column}, 'X') = 0 "
               f"THEN {column}::numeric(38,4) ELSE {_decimal(column, modern)} END")
        # rounds as round(, 2) does; an amount of 1e34 or more is its float8's text
        return f"coalesce(({dec})::numeric(38,2)::text, nullif({column}, '')::float8::text, '')"
    if kind == INTEGER:
        return f"coalesce(nullif({column}, '')::integer::text, '')"
    raise ValueError(f"{column} ({kind}) is not a key column")


def quick_gate_sql(schema: TripSchema, landed: str) -> str:
    """SQL reading every value of the file's landed rows (``%s``: the filename) the quick
    way: a data exception unless every value is typable or blank (no row is untypable)."""
    checks = ", ".join(_quick_check(c.sql_name, c.type) for c in schema.columns if c.type != TEXT)
    return f"SELECT count(*), min(num_nulls({checks})) FROM {landed} WHERE filename = %s"


def quick_keyed_sql(schema: TripSchema, landed: str, modern: bool = True) -> str:
    """The file's landed rows (``%s``: the filename) typed and hashed the quick way:
    unique_row_id, line_number and the silver columns; a data exception where the careful
    way is needed. One level, no subquery: the planner can run all of it in parallel workers
    (a timestamp is read twice, which costs less than holding it in a subquery)."""
    key = "md5(" + " || '|' || ".join(
        _quick_key_text(c, schema.column(c).type, modern) for c in schema.key_columns) + ")"
    typed = ", ".join(f"{_quick_typed(c.sql_name, c.type)} AS {c.sql_name}" for c in schema.columns)
    return f'SELECT {key} COLLATE "C" AS unique_row_id, line_number, {typed} FROM {landed} WHERE filename = %s'


def key_text_sql(column: str, kind: str) -> str:
    """A key column as the text hashed into unique_row_id (from the typed temp table)."""
    if kind == TIMESTAMP:
        return f"coalesce(to_char({column}, 'YYYY-MM-DD HH24:MI:SS'), '')"
    if column in _KEY_AMOUNTS:  # numeric has no negative zero: round(-0.004, 2) is 0.00
        return f"coalesce(round({column}__dec, 2)::numeric(38,2)::text, {column}::text, '')"
    return f"coalesce({column}::text, '')"


def unique_row_id_sql(schema: TripSchema) -> str:
    return "md5(" + " || '|' || ".join(
        key_text_sql(c, schema.column(c).type) for c in schema.key_columns) + ")"


def qmark_to_pyformat(sql: str) -> str:
    """``?`` placeholders (what callers of ``query`` write on every backend) as psycopg2's
    ``%s``; ``?`` inside quotes is left alone and a literal ``%`` is escaped."""
    out, quote = [], None
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


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


_PG_VARIABLES = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
                 "dbname": "PGDATABASE"}


class PostgresConnectionError(ConnectionError):
    """The server could not be reached or refused us; the message never shows a password."""


class PostgresWarehouseResource(WarehouseResource):
    """A PostgreSQL database holding the schemas ``bronze`` and ``silver`` (and dbt's)."""

    dsn: str = Field(default="", description="libpq DSN; empty: TAXI_PG_DSN, else the PG* variables")
    lock_timeout_seconds: float = Field(default=1800.0,
                                        description="how long a writer waits for another writer of the same month")
    application_name: str = Field(default="taxi_platform")
    force_cast_functions: bool = Field(
        default=False, description="test the casts with plpgsql functions even on PostgreSQL >= 16")

    @property
    def name(self) -> str:
        return "postgres"

    def resolved_dsn(self) -> str:
        return self.dsn or os.environ.get("TAXI_PG_DSN") or ""

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

    def identity(self) -> str:
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

    def _modern(self, conn) -> bool:
        return conn.server_version >= 160000 and not self.force_cast_functions

    # -- generic -------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Run SQL; ``?`` placeholders as on every backend."""
        with self.connect() as conn, conn.cursor() as cur:
            if params:
                cur.execute(qmark_to_pyformat(sql), list(params))
            else:
                cur.execute(sql)
            return cur.fetchall() if cur.description else []

    def describe(self, table: str) -> list[tuple[str, str]]:
        schema, _, name = table.rpartition(".")
        return self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema or "public", name])

    def preview_markdown(self, table: str, filename: str, limit: int = 5) -> str:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {table} WHERE filename = %s LIMIT {int(limit)}", [filename])
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
        return "\n".join(lines)

    # -- DDL -----------------------------------------------------------------------------
    def _ensure_tables(self, schema: TripSchema) -> None:
        """Create schemas, tables, view and helper functions if missing, in a transaction of
        their own (serialized: concurrent CREATE ... IF NOT EXISTS can collide)."""
        landed = f"bronze.{schema.table}_landed"
        text_cols = ", ".join(f'"{c}" text' for c in schema.sql_names)
        typed = ", ".join(f'"{c.sql_name}" {_SQL_TYPES[c.type]}' for c in schema.columns)
        names = ", ".join(f'"{c}"' for c in schema.sql_names)
        probes = [f"to_regclass('{o}') IS NOT NULL" for o in
                  (landed, f"bronze.{schema.table}", f"silver.{schema.table}",
                   f"silver.{schema.table}_quarantine")]
        probes += [f"to_regprocedure('{_fallback_name(t)}(text)') IS NOT NULL" for t in _FALLBACK_FUNCTIONS]
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT " + " AND ".join(probes))
            if cur.fetchone()[0]:
                return  # all there: no catalog writes, no locks
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_DDL_LOCK])
            cur.execute("CREATE SCHEMA IF NOT EXISTS bronze")
            cur.execute("CREATE SCHEMA IF NOT EXISTS silver")
            for pg_type, target in _FALLBACK_FUNCTIONS.items():
                cur.execute(
                    f"CREATE OR REPLACE FUNCTION {_fallback_name(pg_type)}(value text) RETURNS boolean "
                    "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$ BEGIN "
                    f"PERFORM value::{target}; RETURN true; "
                    "EXCEPTION WHEN others THEN RETURN false; END $f$")
            # Line numbers come to a COPY in blocks of 1000 (each block after the one before,
            # so still in file order; gaps between loads do not matter).
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {landed} ("
                "line_number bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000), "
                f"{text_cols}, filename text NOT NULL DEFAULT current_setting('taxi.filename'))")
            # A file's rows are found through a BRIN index (min and max filename of each
            # range of blocks): a COPY writes a file's rows together, so a range holds one
            # file, or two at a boundary, and keeping the index costs a load almost nothing,
            # where a b-tree entry for every row cost a third of the COPY. (Tables made by
            # earlier versions keep their b-tree on (filename, line_number); both work.)
            cur.execute(f"CREATE INDEX IF NOT EXISTS {_landed_brin(schema)} ON {landed} USING brin (filename)")
            cur.execute(f"COMMENT ON TABLE {landed} IS 'Rows of each file as landed, with their "
                        f"order in the file; read bronze.{schema.table}, the view over it.'")
            cur.execute(f"CREATE OR REPLACE VIEW bronze.{schema.table} AS "
                        f"SELECT {names}, filename FROM {landed}")
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS silver.{schema.table} "
                f"(unique_row_id text NOT NULL, filename text NOT NULL, {typed})")
            for ddl in _silver_index_ddl(schema):
                cur.execute(ddl)
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS silver.{schema.table}_quarantine "
                f"(filename text, line_number bigint, reason text, {text_cols})")

    @staticmethod
    def _tune(cur) -> None:
        """This transaction's settings (``_TRANSACTION_SETTINGS``), undone when it ends."""
        cur.execute("SELECT " + ", ".join("set_config(%s, %s, true)" for _ in _TRANSACTION_SETTINGS),
                    [v for item in _TRANSACTION_SETTINGS.items() for v in item])

    @staticmethod
    def _lock(cur, table: str, filename: str = "", shared: bool = False) -> None:
        """Wait for, then hold until the transaction ends, the advisory lock of a table's file."""
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        cur.execute(f"SELECT {fn}(hashtext(%s), hashtext(%s))", [table, filename])

    # -- bronze --------------------------------------------------------------------------
    def load_bronze(self, schema: TripSchema, partition: str, filename: str, path: str,
                    max_quarantine_fraction: float = 0.01) -> BronzeResult:
        table, landed = f"bronze.{schema.table}", f"bronze.{schema.table}_landed"
        columns = ", ".join(f'"{c}"' for c in schema.sql_names)
        self._ensure_tables(schema)
        try:
            with self.connect() as conn, conn.cursor() as cur:
                self._lock(cur, table, filename)
                self._tune(cur)
                cur.execute("SELECT set_config('taxi.filename', %s, true)", [filename])
                cur.execute(f"DELETE FROM {landed} WHERE filename = %s", [filename])
                # Columns by position (the header was checked against the contract already);
                # every field as text: typing is silver's job, so nothing is lost here.
                cur.execute(f"SAVEPOINT {_COPY}")
                try:
                    rows = self._copy(cur, landed, columns, path)
                except psycopg2.DataError:
                    if not files.has_mixed_line_endings(path):
                        raise
                    # Some lines end with CRLF, others with LF (a real published file does
                    # this), which COPY refuses: the file is sent again with LF throughout.
                    cur.execute(f"ROLLBACK TO SAVEPOINT {_COPY}")
                    rows = self._copy(cur, landed, columns, path, normalize_line_endings=True)
                if rows == 0:
                    raise BadInputError(
                        f"{filename} (partition {partition}) has a header but no trip rows; "
                        "the previous load of this month (if any) is kept. Check the source file.",
                        file=filename, partition=partition)
                # Statistics of the new rows' filename, so that the scans of this file (the
                # gate below, silver's typing pass) are planned for their size (in parallel)
                # rather than for the few rows a table without statistics is assumed to hold.
                cur.execute(f"ANALYZE {landed} (filename)")
                self._summarize(cur, f"bronze.{_landed_brin(schema)}", unless_rows=rows)
                # The typing gate runs here too, so a file silver would refuse never replaces
                # a good month in bronze either.
                self._gate_untypable(cur, schema, partition, filename, self._modern(conn),
                                     max_quarantine_fraction)
        except (psycopg2.DataError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise BadInputError(
                f"{filename} (partition {partition}) could not be loaded into {table}: "
                f"{str(exc).strip().splitlines()[0]}. The file is probably truncated or malformed: "
                "re-materialize its raw and lake assets; if it persists, the source file "
                "itself is bad.", file=filename, partition=partition) from exc
        return BronzeResult(filename, rows)

    @staticmethod
    def _copy(cur, landed: str, columns: str, path: str, normalize_line_endings: bool = False) -> int:
        """COPY the CSV file (gunzipped on the fly) into ``landed``; returns the rows written."""
        with files.open_binary(path) as stream:
            reader = _ReadErrors(files.LineEndingsNormalized(stream) if normalize_line_endings else stream)
            try:
                cur.copy_expert(
                    f"COPY {landed} ({columns}) FROM STDIN WITH "
                    "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"')",
                    reader, size=_COPY_CHUNK)
            except psycopg2.errors.QueryCanceled:
                if reader.error is not None:
                    raise reader.error from None
                raise
        return cur.rowcount

    @staticmethod
    def _summarize(cur, index: str, unless_rows: int | None = None) -> None:
        """Summarize the block ranges written since the last summary in the BRIN ``index``
        (when there is one, and we own it), so that reading another file skips them from now
        on. Not when its table holds (almost) only ``unless_rows`` rows, the new ones: there is
        nothing to skip, and the next load summarizes these ranges with its own."""
        cur.execute("SELECT i.oid, t.reltuples FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid "
                    "JOIN pg_class t ON t.oid = x.indrelid "
                    "WHERE i.oid = to_regclass(%s) AND pg_has_role(i.relowner, 'USAGE')", [index])
        found = cur.fetchone()
        if found and (unless_rows is None or found[1] > 1.1 * unless_rows):
            cur.execute("SELECT brin_summarize_new_values(%s::regclass)", [found[0]])

    # -- silver --------------------------------------------------------------------------
    def build_silver(self, schema: TripSchema, partition: str, filename: str,
                     max_quarantine_fraction: float = 0.01) -> SilverResult:
        bronze, landed = f"bronze.{schema.table}", f"bronze.{schema.table}_landed"
        silver, quarantine = f"silver.{schema.table}", f"silver.{schema.table}_quarantine"
        silver_cols = ", ".join(f'"{c}"' for c in schema.sql_names)
        pickup = f'"{schema.pickup}"'
        start, end = month_bounds(partition)
        log = get_dagster_logger()
        self._ensure_tables(schema)

        with self.connect() as conn, conn.cursor() as cur:
            modern = self._modern(conn)
            # Silver's ids may move between files (an earlier month owns them), so silver
            # writers of one table take turns; the bronze file is held (shared) while read.
            self._lock(cur, silver)
            self._lock(cur, bronze, filename, shared=True)
            self._tune(cur)
            cur.execute(f"SELECT count(*) FROM {landed} WHERE filename = %s", [filename])
            rows_in = cur.fetchone()[0]
            if not rows_in:
                raise BadInputError(
                    f"{filename} (partition {partition}) is not in {bronze}: materialize "
                    f"bronze/{schema.table} for {partition} first (select '*silver/{schema.table}' "
                    "to run the upstream layers in the same run).", file=filename, partition=partition)
            # _silver: the file's typable rows, the first of each id in file order, sorted by
            # id. Typed, checked and hashed in one pass the quick way; the careful way when
            # that pass gives up on a value (see the module docstring).
            distinct = self._quick_silver(cur, schema, landed, filename, modern)
            bad, reasons_summary = 0, []
            if distinct is None:
                bad, reasons_summary, distinct = self._careful_silver(
                    cur, schema, partition, filename, modern, max_quarantine_fraction)
            good = rows_in - bad
            cur.execute(f"DELETE FROM {quarantine} WHERE filename = %s", [filename])
            if bad:
                raw = ", ".join(f'l."{c}"' for c in schema.sql_names)
                cur.execute(f"INSERT INTO {quarantine} SELECT %s, b.file_line, b.reason, {raw} "
                            f"FROM _bad b JOIN {landed} l ON l.line_number = b.line_number "
                            "WHERE l.filename = %s ORDER BY b.file_line", [filename, filename])
            cur.execute(f"DELETE FROM {silver} WHERE filename = %s", [filename])
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
            log.warning(f"{filename}: {bad} rows quarantined in {quarantine}")
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

    def _quick_silver(self, cur, schema: TripSchema, landed: str, filename: str, modern: bool) -> int | None:
        """_silver typed the quick way; the number of its rows (distinct ids), or None (and
        nothing changed) when some value needs the careful way."""
        cur.execute(f"SAVEPOINT {_QUICK}")
        try:
            cur.execute(self._first_of_each_id(quick_keyed_sql(schema, landed, modern)), [filename])
        except psycopg2.DataError:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_QUICK}")
            return None
        distinct = cur.rowcount
        cur.execute(f"RELEASE SAVEPOINT {_QUICK}")
        return distinct

    def _careful_silver(self, cur, schema: TripSchema, partition: str, filename: str, modern: bool,
                        max_fraction: float) -> tuple[int, list[tuple[str, int, str]], int]:
        """The careful way, testing every cast first: _typed (every row: types, key decimals
        and the quarantine reason, NULL for a good row), _bad (its rows with a reason, and their
        line in the file) and _silver from the good rows; fails the month when too many rows
        cannot be typed. Returns (bad rows, reasons by column, distinct ids)."""
        landed = f"bronze.{schema.table}_landed"
        typed_names = ", ".join(f'"{c}"' for c in schema.sql_names)
        typed_cols = ",\n  ".join(f'{_typed(c.sql_name, c.type, modern)} AS "{c.sql_name}"'
                                  for c in schema.columns)
        decimals = ",\n  ".join(f"{_decimal(c, modern)} AS {c}__dec" for c in _KEY_AMOUNTS)
        dec_names = ", ".join(f"{c}__dec" for c in _KEY_AMOUNTS)
        raw_cols = ",\n  ".join(f'"{c}" AS "{c}__raw"' for c in schema.sql_names)
        reasons = ", ".join(
            f"CASE WHEN {c.sql_name}__raw IS NOT NULL AND trim({c.sql_name}__raw) <> '' "
            f"AND {c.sql_name} IS NULL THEN '{c.sql_name}: cannot read ''' || "
            f"{c.sql_name}__raw || ''' as {_REASON_TYPES[c.type]}' END"
            for c in schema.columns if c.type != TEXT)
        # Type once (OFFSET 0: each cast runs once however often the reasons read it).
        cur.execute(f"""
            CREATE TEMP TABLE _typed ON COMMIT DROP AS
            SELECT line_number, {typed_names}, {dec_names},
                   NULLIF(concat_ws('; ', {reasons}), '') AS reason FROM (
              SELECT line_number,
              {typed_cols},
              {decimals},
              {raw_cols}
              FROM {landed} WHERE filename = %s OFFSET 0) t""", [filename])
        cur.execute("SELECT count(*), count(reason) FROM _typed")
        rows, bad = cur.fetchone()
        reasons_summary = []
        if bad:
            # Line numbers in the file only for the rows that need one (header: line 1).
            cur.execute("""
                CREATE TEMP TABLE _bad ON COMMIT DROP AS SELECT line_number, file_line, reason FROM (
                  SELECT line_number, row_number() OVER (ORDER BY line_number) + 1 AS file_line, reason
                  FROM _typed) t WHERE reason IS NOT NULL""")
            cur.execute("ANALYZE _bad")  # a few rows: looked up in landed, not the other way round
            reasons_summary = self._untypable_by_column(cur, schema, filename, modern, only_bad=True)
        if rows and bad / rows > max_fraction:
            raise _too_many_untypable(schema, partition, filename, rows, bad, reasons_summary, max_fraction)
        cur.execute(self._first_of_each_id(
            f'SELECT {unique_row_id_sql(schema)} COLLATE "C" AS unique_row_id, line_number, {typed_names} '
            "FROM _typed WHERE reason IS NULL"))
        return bad, reasons_summary, cur.rowcount

    def _untypable_by_column(self, cur, schema: TripSchema, filename: str, modern: bool,
                             only_bad: bool = False) -> list[tuple[str, int, str]]:
        """(column, rows, an example value) for every column with text that cannot be typed.
        ``only_bad``: read only the rows in _bad (where all such text is)."""
        counts = ", ".join(
            f"count(*) FILTER (WHERE {_untypable(c.sql_name, c.type, modern)}), "
            f"min({c.sql_name}) FILTER (WHERE {_untypable(c.sql_name, c.type, modern)})"
            for c in schema.columns)
        where = " AND line_number IN (SELECT line_number FROM _bad)" if only_bad else ""
        cur.execute(f"SELECT {counts} FROM bronze.{schema.table}_landed WHERE filename = %s{where}",
                    [filename])
        row = cur.fetchone()
        return [(c.sql_name, row[2 * i], repr(row[2 * i + 1]))
                for i, c in enumerate(schema.columns) if row[2 * i]]

    def _gate_untypable(self, cur, schema: TripSchema, partition: str, filename: str,
                        modern: bool, max_fraction: float) -> None:
        """Fail (inside the caller's transaction) when too many rows cannot be typed. First the
        quick way (one cast per value): when it reads every value, no row is untypable."""
        landed = f"bronze.{schema.table}_landed"
        cur.execute(f"SAVEPOINT {_QUICK}")
        try:
            cur.execute(quick_gate_sql(schema, landed), [filename])
            cur.execute(f"RELEASE SAVEPOINT {_QUICK}")
            return
        except psycopg2.DataError:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_QUICK}")
        any_bad = " OR ".join(f"({_untypable(c.sql_name, c.type, modern)})" for c in schema.columns)
        cur.execute(f"SELECT count(*), count(*) FILTER (WHERE {any_bad}) "
                    f"FROM {landed} WHERE filename = %s", [filename])
        rows, bad = cur.fetchone()
        if rows and bad / rows > max_fraction:
            raise _too_many_untypable(schema, partition, filename, rows, bad,
                                      self._untypable_by_column(cur, schema, filename, modern),
                                      max_fraction)


def _landed_brin(schema: TripSchema) -> str:
    return f"{schema.table}_landed_file_brin"


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


def _too_many_untypable(schema, partition, filename, rows, bad, by_column, max_fraction) -> BadInputError:
    detail = "; ".join(f"column {col}: {n} rows, e.g. {example}" for col, n, example in by_column)
    return BadInputError(
        f"{filename} (partition {partition}): {bad} of {rows} rows ({bad / rows:.1%}) cannot be "
        f"typed, more than the {max_fraction:.1%} allowed (TAXI_MAX_QUARANTINE_FRACTION). "
        f"{detail}. Nothing was changed for this month; fix the file, or the column contract "
        "in taxi_platform/schemas.py if TLC changed a type.",
        file=filename, partition=partition, column=by_column[0][0] if by_column else None)
