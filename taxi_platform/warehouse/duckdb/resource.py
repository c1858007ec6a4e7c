"""The embedded default warehouse: one DuckDB file, no server (``TAXI_WAREHOUSE=duckdb``).

DuckDB lets one process write a file at a time, so every operation opens its own connection
inside :meth:`DuckDBWarehouseResource.exclusive` (an advisory lock beside the file that steps,
dbt and GX of other processes wait for). A step's queries share one opening of the file
(:meth:`~DuckDBWarehouseResource.session`), let go of while GX or dbt opens it their own way.
Bronze and silver follow the port (taxi_platform/warehouse/port.py) with DuckDB's own readers
and SQL:

- landing: ``read_csv`` (every field as text, columns by position, gzip decided by content) or
  ``read_parquet`` (columns by name, each cast to text: a double as its shortest round-trip
  decimal), typed as silver types text in the same pass, into
  ``bronze.<colour>_tripdata_landed_typed``; a file with a value that does not type (or a
  timestamp not written ``YYYY-MM-DD HH:MM:SS``) is landed as it is, as text, into
  ``..._landed_text`` instead. The view ``bronze.<colour>_tripdata_landed`` shows both as text
  (what the bronze gate validates): a typed value as DuckDB writes it back (``0.5`` for the
  file's ``0.50``), timestamps and the key's amounts as in the file. A file whose lines end
  both in CRLF and LF is read again with LF throughout;
- silver: keyed and written in two passes over the month (:meth:`_build_silver`), from the
  typed values, or typing the text (quarantining what does not type).
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import duckdb
from dagster import get_dagster_logger
from pydantic import Field

from taxi_platform import errors, files
from taxi_platform.files import FileContract
from taxi_platform.partitions import month_bounds
from taxi_platform.schemas import KEY_AMOUNTS, TEXT, TIMESTAMP, TripSchema
from taxi_platform.settings import setting
from taxi_platform.warehouse.duckdb.sql import (
    SQL_TYPES,
    key_text,
    key_value,
    quoted,
    typed,
    untypable,
)
from taxi_platform.warehouse.port import IncomingProfile, PublishedLoad, SilverResult, WarehouseResource

# A month's load is kept in one of two tables: typed, when every value of the file types (the
# usual case: values to write instead of text, which silver then reads instead of typing), or
# as text, when some value does not (silver quarantines its rows, quoting the text). The view
# bronze.<table>_landed shows both as text.
LANDED_TEXT, LANDED_TYPED = "_landed_text", "_landed_typed"
UNTYPABLE_IN_FILE = "taxi_platform: a value of the file does not type"

_HELD: dict[str, int] = {}  # DuckDB files this process holds the advisory lock of (depth)
_OPEN: dict[str, duckdb.DuckDBPyConnection] = {}  # DuckDB files session() keeps open: an idle connection


def _landed_type(schema: TripSchema, column: str) -> str:
    """A column's type in the typed landed table: silver's, but text for the amounts hashed into
    unique_row_id (their key is rounded from the text: see key_amount) and for the columns the
    contract does not know."""
    if column not in schema.sql_names or column in KEY_AMOUNTS:
        return "VARCHAR"
    return SQL_TYPES[schema.column(column).type]


class DuckDBWarehouseResource(WarehouseResource):
    """The DuckDB file that holds bronze, silver and the dbt models (TAXI_DUCKDB_PATH)."""

    ENV_FIELDS: ClassVar[dict[str, str]] = {"path": "TAXI_DUCKDB_PATH", "memory_limit": "TAXI_DUCKDB_MEMORY_LIMIT"}

    path: str = Field(default_factory=setting("duckdb_path"), description="TAXI_DUCKDB_PATH")
    memory_limit: str = Field(default_factory=setting("duckdb_memory_limit"),
                              description="DuckDB memory_limit (TAXI_DUCKDB_MEMORY_LIMIT)")
    lock_timeout_seconds: float = Field(default=1800.0, description="how long to wait for the file lock")

    # -- what the other layers ask ----------------------------------------------------------
    @property
    def name(self) -> str:
        return "duckdb"

    def identity(self) -> str:
        return f"duckdb:{Path(self.path).absolute()}"

    def gx_url(self) -> str:
        from taxi_platform.warehouse.duckdb import gx  # registers the read-only dialect

        return gx.url(Path(self.path).absolute(), self.memory_limit)

    @property
    def held_by_dbt_while_it_runs(self) -> bool:
        return True  # one process opens the DuckDB file for writing at a time

    def dbt_env(self) -> dict[str, str]:
        # absolute: dbt runs in dbt_project/
        return {**super().dbt_env(), "TAXI_DUCKDB_PATH": str(Path(self.path).absolute()),
                "TAXI_DUCKDB_MEMORY_LIMIT": self.memory_limit}

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Wait for, then hold, an advisory lock beside the DuckDB file, so that steps in
        other processes (ours, dbt's, GX's) take turns instead of failing on DuckDB's own
        lock. Re-entrant within a process."""
        if _HELD.get(self.path):
            _HELD[self.path] += 1
            try:
                yield
            finally:
                _HELD[self.path] -= 1
            return
        lock_path = Path(self.path).with_name(Path(self.path).name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as handle:
            deadline, warned = time.monotonic() + self.lock_timeout_seconds, False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"gave up waiting {self.lock_timeout_seconds:.0f}s "
                                           f"for the DuckDB file {self.path}") from None
                    if not warned:
                        get_dagster_logger().info(f"waiting for another step using {self.path}")
                        warned = True
                    time.sleep(0.2)
            _HELD[self.path] = 1
            try:
                yield
            finally:
                _HELD[self.path] = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Keep the file open for the block (under :meth:`exclusive`): each :meth:`connect` is
        then a new connection to the database already open in this process (under a
        millisecond) instead of opening the file again (about 15 ms, and a checkpoint at the
        last close; a step made a dozen). Every connection keeps its own transactions."""
        with self.exclusive():
            if self.path in _OPEN:  # an enclosing block keeps it open
                yield
                return
            _OPEN[self.path] = self._open()
            try:
                yield
            finally:
                anchor = _OPEN.pop(self.path, None)
                if anchor is not None:
                    anchor.close()

    @contextlib.contextmanager
    def outside_session(self) -> Iterator[None]:
        """Let the file go for the block, if a :meth:`session` keeps it open: DuckDB refuses a
        connection with another configuration (GX's read-only one) while the file is open, and
        dbt's process cannot open it at all."""
        anchor = _OPEN.pop(self.path, None)
        if anchor is None:
            yield
            return
        anchor.close()
        try:
            yield
        finally:
            _OPEN[self.path] = self._open()

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.exclusive():
            conn = self._open(read_only)
            try:
                yield conn
            finally:
                conn.close()

    def _open(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A connection, once the file is free: a process outside our lock (a notebook, the
        DuckDB CLI) may hold it."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        deadline, wait = time.monotonic() + self.lock_timeout_seconds, 0.1
        while True:
            try:
                return duckdb.connect(self.path, read_only=read_only, config={"memory_limit": self.memory_limit})
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(wait)
                wait = min(wait * 2, 2.0)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- SQL -------------------------------------------------------------------------------------
    def select(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
        with self.connect() as conn:
            result = conn.execute(sql, params or [])
            return [d[0] for d in result.description or []], result.fetchall()

    def describe(self, table: str) -> list[tuple[str, str]]:
        schema, _, name = table.rpartition(".")
        return self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema or "main", name])

    def duplicated_values(self, table: str, column: str) -> int:
        # Distinct 64-bit hashes first (equal values have equal hashes, so as many distinct
        # hashes as rows means no value repeats): a third cheaper than grouping 7M md5 strings;
        # the exact GROUP BY runs only when some hash repeats.
        with self.connect() as conn:
            rows, hashes = conn.execute(f"SELECT count(*), count(DISTINCT hash({column})) "
                                        f"FROM {table}").fetchone()
            if rows == hashes:
                return 0
            return conn.execute(f"SELECT count(*) FROM (SELECT {column} FROM {table} "
                                "GROUP BY 1 HAVING count(*) > 1)").fetchone()[0]

    # -- bronze ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _month_lock(self, schema: TripSchema, partition: str) -> Iterator[None]:
        with self.exclusive():  # one writer of the file at a time, across processes
            yield

    def _prepare_bronze(self, schema: TripSchema, extra_columns: list[str]) -> None:
        t = schema.table
        (text, typed_t), loads = self._landed_tables(schema), f"bronze.{t}_loads"
        with self.connect() as conn:
            kinds = dict(conn.execute(
                "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'bronze'"
            ).fetchall())
            conn.execute("CREATE SCHEMA IF NOT EXISTS bronze")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {loads} (month VARCHAR PRIMARY KEY, filename VARCHAR "
                         "NOT NULL, load_id VARCHAR NOT NULL, rows BIGINT NOT NULL, published_at TIMESTAMP)")
            if kinds.get(t) == "BASE TABLE":  # bronze before the landed layout: migrate
                conn.execute(f"ALTER TABLE bronze.{t} RENAME TO {t}{LANDED_TEXT}")
                conn.execute(f"ALTER TABLE {text} ADD COLUMN load_id VARCHAR")
                conn.execute(f"UPDATE {text} SET load_id = 'before-' || filename")
                conn.execute(f"INSERT INTO {loads} (month, filename, load_id, rows, published_at) "
                             "SELECT substr(filename, strpos(filename, '_tripdata_') + 10, 7), "
                             f"filename, load_id, count(*), now() FROM {text} GROUP BY ALL")
            elif kinds.get(f"{t}_landed") == "BASE TABLE":  # landed text only, before typed loads
                conn.execute(f"ALTER TABLE bronze.{t}_landed RENAME TO {t}{LANDED_TEXT}")
            # What the gate counted (NULL for loads published before it was kept): silver skips
            # its own untypable-value test over a load the gate found none in.
            conn.execute(f"ALTER TABLE {loads} ADD COLUMN IF NOT EXISTS untypable_rows BIGINT")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {text} ("
                         + ", ".join(f"{quoted(c)} VARCHAR" for c in schema.sql_names)
                         + ", filename VARCHAR, load_id VARCHAR)")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {typed_t} ("
                         + ", ".join(f"{quoted(c)} {_landed_type(schema, c)}" for c in schema.sql_names)
                         + ", filename VARCHAR, load_id VARCHAR)")
            have = {}
            for table in (text, typed_t):
                have[table] = {r[0] for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'bronze' "
                    "AND table_name = ?", [table.split(".")[1]]).fetchall()}
            for column in [*schema.sql_names, *sorted(have[text] - have[typed_t]), *extra_columns]:
                for table in (text, typed_t):
                    if column not in have[table]:
                        kind = "VARCHAR" if table == text else _landed_type(schema, column)
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {quoted(column)} {kind}")
                        have[table].add(column)
            shown = [*schema.sql_names, *sorted(have[text] - set(schema.sql_names) - {"filename", "load_id"})]
            # Every load as text, whichever table holds it (what the bronze gate validates).
            as_text = ", ".join(quoted(c) if _landed_type(schema, c) == "VARCHAR"
                                else f"CAST({quoted(c)} AS VARCHAR) AS {quoted(c)}" for c in shown)
            conn.execute(f"CREATE OR REPLACE VIEW bronze.{t}_landed AS "
                         f"SELECT {', '.join(quoted(c) for c in shown)}, filename, load_id FROM {text} "
                         f"UNION ALL SELECT {as_text}, filename, load_id FROM {typed_t}")
            conn.execute(f"CREATE OR REPLACE VIEW bronze.{t} AS SELECT "
                         f"{', '.join(quoted(c) for c in shown)}, filename FROM bronze.{t}_landed "
                         f"WHERE load_id IN (SELECT load_id FROM {loads})")

    def _land(self, schema: TripSchema, filename: str, path: str, contract: FileContract, load_id: str,
              partition: str) -> None:
        text, _ = self._landed_tables(schema)
        try:
            if not self._insert_typed(schema, path, contract, filename, load_id):
                self._insert_text(text, path, contract, filename, load_id)
        except duckdb.Error as exc:
            if contract.format == files.PARQUET or not files.has_mixed_line_endings(path):
                raise errors.BadInputError(
                    f"{filename} (partition {partition}) could not be loaded into bronze.{schema.table}: "
                    f"{str(exc).splitlines()[0]}. The file is probably truncated or malformed: "
                    "re-materialize its raw and lake assets; if it persists, the source file "
                    "itself is bad.", file=filename, partition=partition) from None
            # Some lines end with CRLF, others with LF (a real published file does this):
            # DuckDB's reader takes one kind, so the file is read again with LF throughout.
            with files.normalized_copy(path) as normalized:
                if not self._insert_typed(schema, normalized, contract, filename, load_id, gzipped=False):
                    self._insert_text(text, normalized, contract, filename, load_id, gzipped=False)

    @staticmethod
    def _read_file_as_text(contract: FileContract, gzipped: bool | None = None) -> str:
        """SELECT of every column of the file (parameter: its path) as text, named as in bronze,
        in file order."""
        if contract.format == files.PARQUET:
            # Columns by name, each as text: a double as its shortest round-trip decimal.
            return ("SELECT " + ", ".join(f"CAST({quoted(name)} AS VARCHAR) AS {quoted(column)}"
                                          for name, column in contract.columns) + " FROM read_parquet(?)")
        # Columns by position (the header was checked against the contract); every field as
        # text, typed (if at all) as silver types text, so nothing is lost here.
        spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for _, c in contract.columns) + "}"
        compression = "gzip" if (contract.gzipped if gzipped is None else gzipped) else "none"
        return (f"SELECT * FROM read_csv(?, header = true, columns = {spec}, auto_detect = false, "
                f"delim = ',', quote = '\"', escape = '\"', strict_mode = true, compression = '{compression}')")

    def _insert_text(self, table: str, path, contract: FileContract, filename: str, load_id: str,
                     gzipped: bool | None = None) -> None:
        columns = ", ".join(quoted(column) for _, column in contract.columns)
        with self._transaction() as conn:
            conn.execute(f"INSERT INTO {table} ({columns}, filename, load_id) SELECT *, ?, ? FROM "
                         f"({self._read_file_as_text(contract, gzipped)})", [filename, load_id, str(path)])

    def _insert_typed(self, schema: TripSchema, path, contract: FileContract, filename: str,
                      load_id: str, gzipped: bool | None = None) -> bool:
        """Land the file typed, when every value of it types (False, and nothing landed, when
        one does not: the file is then landed as text; a file DuckDB cannot read raises). A
        value is typed exactly as silver types text (``typed()``), so a typed load gives silver
        the very values its text would. A
        timestamp must also be written as DuckDB writes it back (``YYYY-MM-DD HH:MM:SS``, years
        1900-2099), so that the bronze gate, reading the typed load as text, judges the file's
        own text."""
        values, untypable_sql = [], []
        for _, column in contract.columns:
            r, v = quoted(column + "__raw"), quoted(column)
            kind = schema.column(column).type if column in schema.sql_names else TEXT
            if kind == TIMESTAMP:
                values.append(f"TRY_CAST({r} AS TIMESTAMP) AS {v}")
                untypable_sql.append(f"{r} IS NOT NULL AND ({v} IS NULL OR CAST({v} AS VARCHAR) <> {r} "
                                     f"OR {v} < TIMESTAMP '1900-01-01' OR {v} >= TIMESTAMP '2100-01-01')")
            elif kind != TEXT and column not in KEY_AMOUNTS:
                values.append(f"{typed(r, kind)} AS {v}")
                untypable_sql.append(untypable(r, kind, value=v))
            else:
                values.append(f"{r} AS {v}")
                if kind != TEXT:  # an amount of the key: kept as text (key_amount rounds the text)
                    untypable_sql.append(untypable(r, kind))
        raw = ", ".join(f"{quoted(column)} AS {quoted(column + '__raw')}" for _, column in contract.columns)
        columns = ", ".join(quoted(column) for _, column in contract.columns)
        guard = " OR ".join(f"({cond})" for cond in untypable_sql) or "false"
        try:
            with self._transaction() as conn:
                # Typed in a subquery (each value once, read by both the guard and the insert);
                # error(): the first value that does not type ends the statement there, not
                # after the whole file.
                conn.execute(f"""
                    INSERT INTO {self._landed_tables(schema)[1]} ({columns}, filename, load_id)
                    SELECT {columns}, ?, CASE WHEN {guard} THEN error('{UNTYPABLE_IN_FILE}') ELSE ? END
                    FROM (SELECT {', '.join(values)}, * FROM (
                      SELECT {raw} FROM ({self._read_file_as_text(contract, gzipped)})))""",
                    [filename, load_id, str(path)])
        except duckdb.Error as exc:
            if UNTYPABLE_IN_FILE not in str(exc):
                raise
            return False
        return True

    def _typed_load(self, conn: duckdb.DuckDBPyConnection, schema: TripSchema, load_id: str) -> bool:
        """Whether the load was landed typed (else as text)."""
        return conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {self._landed_tables(schema)[1]} "
                            "WHERE load_id = ? LIMIT 1)", [load_id]).fetchone()[0] > 0

    def _profile(self, schema: TripSchema, partition: str, filename: str, load_id: str) -> IncomingProfile:
        text, typed_t = self._landed_tables(schema)
        with self.connect() as conn:
            if self._typed_load(conn, schema, load_id):  # every value typed: nothing untypable
                start, end = month_bounds(partition)
                rows, in_month = conn.execute(
                    f"SELECT count(*), count(*) FILTER (WHERE {schema.pickup} >= ? AND {schema.pickup} < ?) "
                    f"FROM {typed_t} WHERE load_id = ?", [start, end, load_id]).fetchone()
                return IncomingProfile(rows, 0, in_month, [])
            start, end = self._month_text_bounds(partition)
            any_bad = " OR ".join(f"({untypable(c.sql_name, c.type)})" for c in schema.columns if c.type != TEXT)
            rows, in_month = conn.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {schema.pickup} >= ? AND {schema.pickup} < ?) "
                f"FROM {text} WHERE load_id = ?", [start, end, load_id]).fetchone()
            # A WHERE, not count(*) FILTER: DuckDB evaluates a filter's conditions adaptively.
            bad = conn.execute(f"SELECT count(*) FROM {text} WHERE load_id = ? AND ({any_bad})",
                               [load_id]).fetchone()[0]
            by_column = self._untypable_by_column(conn, schema, load_id) if bad else []
        return IncomingProfile(rows, bad, in_month, by_column)

    def _publish(self, schema: TripSchema, partition: str, filename: str, load_id: str, rows: int,
                 untypable_rows: int | None = None) -> None:
        names = schema.month_files(partition)
        with self._transaction() as conn:
            for landed in self._landed_tables(schema):
                conn.execute(f"DELETE FROM {landed} WHERE filename IN (?, ?) AND load_id <> ?", [*names, load_id])
            conn.execute(f"DELETE FROM bronze.{schema.table}_loads WHERE month = ?", [partition])
            conn.execute(f"INSERT INTO bronze.{schema.table}_loads (month, filename, load_id, rows, published_at, "
                         "untypable_rows) VALUES (?, ?, ?, ?, now(), ?)", [partition, filename, load_id, rows,
                                                                          untypable_rows])

    def _discard_load(self, schema: TripSchema, filename: str, load_id: str) -> None:
        with self._transaction() as conn:
            for landed in self._landed_tables(schema):
                conn.execute(f"DELETE FROM {landed} WHERE load_id = ?", [load_id])

    def _discard_unpublished(self, schema: TripSchema, partition: str) -> None:
        with self._transaction() as conn:
            for landed in self._landed_tables(schema):
                conn.execute(f"DELETE FROM {landed} WHERE filename IN (?, ?) AND load_id NOT IN "
                             f"(SELECT load_id FROM bronze.{schema.table}_loads)", schema.month_files(partition))

    @staticmethod
    def _landed_tables(schema: TripSchema) -> tuple[str, str]:
        return f"bronze.{schema.table}{LANDED_TEXT}", f"bronze.{schema.table}{LANDED_TYPED}"

    def _untypable_by_column(self, conn, schema: TripSchema, load_id: str) -> list[tuple[str, int, str]]:
        """(column, rows, an example value) for every column with text that cannot be typed."""
        counts = ", ".join(
            f"count(*) FILTER (WHERE {untypable(c.sql_name, c.type)}), "
            f"any_value({c.sql_name}) FILTER (WHERE {untypable(c.sql_name, c.type)})"
            for c in schema.columns)
        row = conn.execute(f"SELECT {counts} FROM {self._landed_tables(schema)[0]} WHERE load_id = ?",
                           [load_id]).fetchone()
        return [(c.sql_name, row[2 * i], repr(row[2 * i + 1]))
                for i, c in enumerate(schema.columns) if row[2 * i]]

    # -- silver ----------------------------------------------------------------------------------
    def ensure_tables(self, schema: TripSchema) -> None:
        with self.connect() as conn:
            for ddl in self._silver_ddl(schema):
                conn.execute(ddl)

    def _silver_ddl(self, schema: TripSchema) -> list[str]:
        silver, quarantine = f"silver.{schema.table}", f"silver.{schema.table}_quarantine"
        typed_cols = ", ".join(f'"{c.sql_name}" {SQL_TYPES[c.type]}' for c in schema.columns)
        raw = ", ".join(f'"{c}" VARCHAR' for c in schema.sql_names)
        return [
            "CREATE SCHEMA IF NOT EXISTS silver",
            # md5 hex does not compress; DuckDB's analysis of it cost more than the write itself.
            (f"CREATE TABLE IF NOT EXISTS {silver} (unique_row_id VARCHAR NOT NULL USING COMPRESSION "
             f"uncompressed, filename VARCHAR NOT NULL, {typed_cols})"),
            f"CREATE TABLE IF NOT EXISTS {quarantine} (filename VARCHAR, line_number BIGINT, reason VARCHAR, {raw})",
            # Tables made before a column joined the contract gain it in place (NULL for loaded months).
            *[f'ALTER TABLE {silver} ADD COLUMN IF NOT EXISTS "{c.sql_name}" {SQL_TYPES[c.type]}'
              for c in schema.columns if c.optional],
            *[f'ALTER TABLE {quarantine} ADD COLUMN IF NOT EXISTS "{c.sql_name}" VARCHAR'
              for c in schema.columns if c.optional],
        ]

    def _build_silver(self, schema: TripSchema, partition: str, load: PublishedLoad,
                      max_quarantine_fraction: float) -> SilverResult:
        filename, load_id = load.filename, load.load_id
        silver, quarantine = f"silver.{schema.table}", f"silver.{schema.table}_quarantine"
        month_files = schema.month_files(partition)
        text_table, typed_table = self._landed_tables(schema)
        with self.connect() as conn:
            migrated = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                                    "'bronze' AND table_name = ?", [typed_table.split(".")[1]]).fetchone()[0]
        if not migrated:  # a warehouse from before typed loads, not loaded since
            self._prepare_bronze(schema, [])
        with self.connect() as conn:
            typed_load = self._typed_load(conn, schema, load_id)
        if typed_load:  # its values as landed (every one types), and the text of the key's amounts
            landed = typed_table
            typed_cols = ", ".join(f'{typed(quoted(c.sql_name), c.type)} AS "{c.sql_name}"'
                                   if c.sql_name in KEY_AMOUNTS else quoted(c.sql_name) for c in schema.columns)
            raw_cols = ", ".join(f'"{c}" AS "{c}__raw"' for c in KEY_AMOUNTS)
        else:
            landed = text_table
            typed_cols = ", ".join(f'{typed(c.sql_name, c.type)} AS "{c.sql_name}"' for c in schema.columns)
            raw_cols = ", ".join(f'"{c}" AS "{c}__raw"' for c in schema.sql_names)

        # Typed from the load in a subquery, so each cast is written once and both the filter
        # (text present but no typed value) and the key read it.
        def typed_from(condition: str = "true") -> str:
            return (f"(SELECT bronze.rowid AS bronze_rowid, {typed_cols}, {raw_cols} "
                    f"FROM {landed} AS bronze WHERE load_id = ? AND {condition})")
        typed_from_bronze = typed_from()
        untypable_cols = [c for c in schema.columns if c.type != TEXT]
        untypable_sql = [f'("{c.sql_name}" IS NULL AND "{c.sql_name}__raw" IS NOT NULL '
                         f"AND trim(\"{c.sql_name}__raw\") <> '')" for c in untypable_cols]
        any_untypable = " OR ".join(untypable_sql)
        key = ", ".join(key_text(c, schema.column(c).type) for c in schema.key_columns)
        key_values = ", ".join(key_value(c, schema.column(c).type) for c in schema.key_columns)
        # The rows that can be typed, with the text their unique_row_id is the md5 of (every
        # row, when pass 1 found none that cannot: its 18 conditions cost 0.8 s on 7M rows).
        def keyed(bad: int) -> str:
            return (f"(SELECT concat_ws('|', {key}) AS key_text, * FROM {typed_from_bronze}"
                    + (f" WHERE NOT ({any_untypable}))" if bad else ")"))
        silver_cols = ", ".join(f'"{c}"' for c in schema.sql_names)
        pickup = f'"{schema.pickup}"'
        start, end = month_bounds(partition)
        header_lines = 0 if filename.endswith(".parquet") else 1  # a CSV's line 1 is its header

        with self.connect() as conn:
            for ddl in self._silver_ddl(schema):
                conn.execute(ddl)
            rows_in = load.rows
            conn.execute("BEGIN TRANSACTION")
            try:
                # Pass 1 (no text built): the rows that can be typed, with a 64-bit hash of
                # their key's typed values. Equal key text means equal hash, so the few repeated
                # hashes are the only candidates for duplicates. A load the gate found no
                # untypable value in is not tested again (half of this pass: only the key
                # columns are typed then).
                (gate_found,) = conn.execute(f"SELECT any_value(untypable_rows) FROM bronze.{schema.table}_loads "
                                             "WHERE load_id = ?", [load_id]).fetchone()
                typable = "true" if gate_found == 0 or typed_load else f"NOT ({any_untypable})"
                conn.execute(f"""
                    CREATE OR REPLACE TEMP TABLE _keys AS
                    SELECT bronze_rowid, hash({key_values}) AS key_hash, {pickup} AS pickup
                    FROM {typed_from_bronze} WHERE {typable}""", [load_id])
                good, lo, hi, no_pickup = conn.execute(
                    "SELECT count(*), date_trunc('second', min(pickup)), date_trunc('second', max(pickup)) "
                    "+ INTERVAL 999999 MICROSECOND, count(*) FILTER (WHERE pickup IS NULL) FROM _keys").fetchone()
                # Where another file's row with one of our ids can be: picked up in the same seconds
                # (the id's key holds the pickup to the second), or, when some of ours have no
                # pickup, without one (that part of their key is then the same).
                near = f"({pickup} BETWEEN ? AND ?{f' OR {pickup} IS NULL' if no_pickup else ''})"
                bad = rows_in - good
                reasons_summary = self._untypable_by_column(conn, schema, load_id) if bad else []
                if bad / rows_in > max_quarantine_fraction:
                    raise errors.too_many_untypable(filename, partition, rows_in, bad, reasons_summary,
                                                    max_quarantine_fraction)
                conn.execute(f"DELETE FROM {quarantine} WHERE filename IN (?, ?)", month_files)
                if bad:  # the rare case: find the lines and say why, column by column
                    reasons = ", ".join(
                        f"CASE WHEN {cond} THEN '{c.sql_name}: cannot read ''' || \"{c.sql_name}__raw\" "
                        f"|| ''' as {SQL_TYPES[c.type]}' END" for c, cond in zip(untypable_cols, untypable_sql))
                    raw_select = ", ".join(f'"{c}__raw"' for c in schema.sql_names)
                    # A load is one INSERT, so its rows follow each other in file order: a row's
                    # line is its offset from the load's first row. (Numbering all 7M rows with a
                    # window over every column, for one bad line, took 18 s and 4 GiB.)
                    first, last, count = conn.execute(f"SELECT min(rowid), max(rowid), count(*) FROM {landed} "
                                                      "WHERE load_id = ?", [load_id]).fetchone()
                    line = (f"bronze_rowid - {first} + 1 + {header_lines}" if last - first + 1 == count
                            else f"row_number() OVER (ORDER BY bronze_rowid) + {header_lines}")
                    conn.execute(f"""
                        INSERT INTO {quarantine} (filename, line_number, reason, {silver_cols})
                        SELECT ?, line_number, reason, {raw_select} FROM (
                          SELECT {line} AS line_number, NULLIF(concat_ws('; ', {reasons}), '') AS reason, *
                          FROM {typed_from_bronze})
                        WHERE reason IS NOT NULL ORDER BY line_number""", [filename, load_id])
                # The same key twice in the file: keep the first in file order (exact, on the
                # key text of the candidates). Found before the insert, because deleting rows a
                # transaction has just written makes DuckDB rewrite them at commit.
                conn.execute(f"""
                    CREATE OR REPLACE TEMP TABLE _later_duplicates AS
                    SELECT bronze_rowid FROM (
                      SELECT bronze_rowid, concat_ws('|', {key}) AS key_text FROM {typed_from(
                        "rowid IN (SELECT bronze_rowid FROM _keys WHERE key_hash IN ("
                        "SELECT key_hash FROM _keys GROUP BY 1 HAVING count(*) > 1))")})
                    QUALIFY row_number() OVER (PARTITION BY key_text ORDER BY bronze_rowid) > 1""",
                    [load_id])
                collapsed = conn.execute("SELECT count(*) FROM _later_duplicates").fetchone()[0]
                distinct = good - collapsed
                # The month's rows, whatever file they came from (a month is one partition).
                conn.execute(f"DELETE FROM {silver} WHERE filename IN (?, ?)", month_files)
                # Pass 2, the one that writes: type, hash, insert. An id already owned by an
                # earlier month's file stays there (whatever the load order), so it is left out.
                # No ORDER BY: silver's row order is not file order (sorting 7M rows for it would
                # cost more than the insert); which line of an id is kept was settled above.
                owned_earlier = conn.execute(f"SELECT count(*) FROM {silver} WHERE filename < ? AND {near}",
                                             [filename, lo, hi]).fetchone()[0]
                conn.execute(f"""
                    INSERT INTO {silver} (unique_row_id, filename, {silver_cols})
                    SELECT unique_row_id, ?, {silver_cols} FROM (
                      SELECT md5(key_text) AS unique_row_id, * FROM {keyed(bad)}
                      WHERE bronze_rowid NOT IN (SELECT bronze_rowid FROM _later_duplicates)) k
                    {f'''WHERE unique_row_id NOT IN (SELECT unique_row_id FROM {silver}
                          WHERE filename < ? AND {near})''' if owned_earlier else ''}""",
                    [filename, load_id] + ([filename, lo, hi] if owned_earlier else []))
                # A later month's file holding one of ours gives it up.
                if conn.execute(f"SELECT count(*) FROM {silver} WHERE filename > ? AND {near}",
                                [filename, lo, hi]).fetchone()[0]:
                    conn.execute(f"""
                        DELETE FROM {silver} WHERE filename > ? AND {near}
                        AND unique_row_id IN (SELECT unique_row_id FROM {silver} WHERE filename = ?)""",
                        [filename, lo, hi, filename])
                conn.execute("DROP TABLE _keys; DROP TABLE _later_duplicates")
                rows_out, outside = conn.execute(
                    f"SELECT count(*), count(*) FILTER (WHERE {pickup} < ? OR {pickup} >= ?) "
                    f"FROM {silver} WHERE filename = ?", [start, end, filename]).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if bad:
            get_dagster_logger().warning(f"{filename}: {bad} rows quarantined in {quarantine}")
        return SilverResult(
            filename=filename, rows_in=rows_in, rows_out=rows_out,
            duplicates_collapsed=collapsed, duplicates_in_other_files=distinct - rows_out,
            rows_quarantined=bad, quarantine_reasons=reasons_summary,
            pickups_outside_month=outside)

