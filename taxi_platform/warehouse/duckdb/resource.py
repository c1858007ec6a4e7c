"""The embedded default warehouse: one DuckDB file, no server.

DuckDB lets one process write a file at a time, so every operation opens its own connection
and waits for the lock when another step holds it (steps of one run are separate processes).
Each month's write is one transaction: delete the file's rows, insert them again.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from dagster import get_dagster_logger
from pydantic import Field

from taxi_platform import files
from taxi_platform.errors import BadInputError
from taxi_platform.partitions import month_bounds
from taxi_platform.warehouse import BronzeResult, SilverResult, WarehouseResource
from taxi_platform.schemas import DOUBLE, INTEGER, TEXT, TIMESTAMP, TripSchema
from taxi_platform.settings import setting

_SQL_TYPES = {INTEGER: "INTEGER", TIMESTAMP: "TIMESTAMP", DOUBLE: "DOUBLE", TEXT: "VARCHAR"}
_KEY_AMOUNTS = ("fare_amount", "trip_distance")
_HELD: dict[str, int] = {}  # DuckDB files this process holds the advisory lock of (depth)


# The shape of a published timestamp (what PostgreSQL's and BigQuery's typing also require):
# DuckDB would also read 'epoch', 'infinity' or a five-digit year as a timestamp.
TIMESTAMP_SHAPE = r"^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"


def _typed(column: str, kind: str) -> str:
    """SQL turning the landed text ``column`` into its silver type (NULL when it cannot).
    Non-finite numbers (``inf``, ``nan``, ``1e309``) cannot be typed: a month's sums would
    become NaN."""
    if kind == INTEGER:
        # TRY_CAST('1.5' AS INTEGER) rounds to 2; accept only whole numbers ('1', '1.0').
        return (f"CASE WHEN TRY_CAST({column} AS DOUBLE) = floor(TRY_CAST({column} AS DOUBLE)) "
                f"THEN TRY_CAST(TRY_CAST({column} AS DOUBLE) AS INTEGER) END")
    if kind == DOUBLE:
        return f"CASE WHEN isfinite(TRY_CAST({column} AS DOUBLE)) THEN TRY_CAST({column} AS DOUBLE) END"
    if kind == TIMESTAMP:
        return (f"CASE WHEN regexp_matches({column}, '{TIMESTAMP_SHAPE}') "
                f"THEN TRY_CAST({column} AS TIMESTAMP) END")
    return f"TRY_CAST({column} AS {_SQL_TYPES[kind]})"


def _key_amount(column: str) -> str:
    """An amount as hashed into unique_row_id, from the landed text through DECIMAL: rounds half
    away from zero, as PostgreSQL's numeric and BigQuery's NUMERIC do, and DECIMAL has no
    negative zero. DECIMAL(18, 4) is a 64-bit integer, several times faster than
    DECIMAL(38, 4), which is kept for amounts too large for it. An amount too large for that
    (1e34 and more) is written as its double's shortest round-trip text (``1e+40``), never
    as NULL (see the id contract in taxi_platform/warehouse/port.py)."""
    raw = f'"{column}__raw"'
    return (f"coalesce(CAST(round(TRY_CAST({raw} AS DECIMAL(18, 4)), 2) AS DECIMAL(18, 2))::VARCHAR, "
            f"CAST(round(TRY_CAST({raw} AS DECIMAL(38, 4)), 2) AS DECIMAL(38, 2))::VARCHAR, "
            f'CAST("{column}" AS VARCHAR), '')')


def _key_text(column: str, kind: str) -> str:
    """A key column as the text hashed into unique_row_id (from the typed columns, and the
    landed text of amounts)."""
    if kind == TIMESTAMP:
        return f"coalesce(strftime({column}, '%Y-%m-%d %H:%M:%S'), '')"
    if column in _KEY_AMOUNTS:
        return _key_amount(column)
    return f"coalesce(CAST({column} AS VARCHAR), '')"


def _key_value(column: str, kind: str) -> str:
    """A key column as a value that is equal exactly when its key text is (cheaper than the
    text: timestamps to the second, as the text has them)."""
    if kind == TIMESTAMP:
        return f"date_trunc('second', {column})"
    if column in _KEY_AMOUNTS:
        return _key_amount(column)
    return column


class DuckDBWarehouseResource(WarehouseResource):
    """The DuckDB file that holds bronze, silver and the dbt models (TAXI_DUCKDB_PATH)."""

    path: str = Field(default_factory=setting("duckdb_path"), description="TAXI_DUCKDB_PATH")
    memory_limit: str = Field(default_factory=setting("duckdb_memory_limit"),
                              description="DuckDB memory_limit (TAXI_DUCKDB_MEMORY_LIMIT)")
    lock_timeout_seconds: float = Field(default=1800.0, description="how long to wait for the file lock")

    @property
    def name(self) -> str:
        return "duckdb"

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
                                           f"for the DuckDB file {self.path}")
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
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self.exclusive():
            deadline, wait = time.monotonic() + self.lock_timeout_seconds, 0.1
            while True:
                try:  # a process outside our lock (a notebook, the DuckDB CLI) may hold the file
                    conn = duckdb.connect(self.path, read_only=read_only,
                                          config={"memory_limit": self.memory_limit})
                    break
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                        raise
                    time.sleep(wait)
                    wait = min(wait * 2, 2.0)
            try:
                yield conn
            finally:
                conn.close()

    # -- generic -------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params or []).fetchall()

    def describe(self, table: str) -> list[tuple[str, str]]:
        schema, _, name = table.rpartition(".")
        return self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema or "main", name])

    def duplicated_values(self, table: str, column: str) -> int:
        # A GROUP BY on a 64-bit hash first (equal values have equal hashes): a third faster than
        # on 7M md5 strings; the exact GROUP BY runs only when some hash repeats.
        with self.connect() as conn:
            if not conn.execute(f"SELECT count(*) FROM (SELECT hash({column}) FROM {table} "
                                "GROUP BY 1 HAVING count(*) > 1)").fetchone()[0]:
                return 0
            return conn.execute(f"SELECT count(*) FROM (SELECT {column} FROM {table} "
                                "GROUP BY 1 HAVING count(*) > 1)").fetchone()[0]

    def preview_markdown(self, table: str, filename: str, limit: int = 5) -> str:
        with self.connect() as conn:
            rel = conn.execute(f"SELECT * FROM {table} WHERE filename = ? LIMIT {int(limit)}", [filename])
            names = [d[0] for d in rel.description]
            rows = rel.fetchall()
        lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
        return "\n".join(lines)

    # -- bronze --------------------------------------------------------------------------
    def load_bronze(self, schema: TripSchema, partition: str, filename: str, path: str,
                    max_quarantine_fraction: float = 0.01) -> BronzeResult:
        table = f"bronze.{schema.table}"
        cols = ", ".join(f'"{c}" VARCHAR' for c in schema.sql_names)
        with self.connect() as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS bronze")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols}, filename VARCHAR)")
            try:
                rows = self._replace_bronze(conn, schema, partition, filename, path, max_quarantine_fraction)
            except duckdb.Error as exc:
                if not files.has_mixed_line_endings(path):
                    raise BadInputError(
                        f"{filename} (partition {partition}) could not be loaded into {table}: "
                        f"{str(exc).splitlines()[0]}. The file is probably truncated or malformed: "
                        "re-materialize its raw and lake assets; if it persists, the source file "
                        "itself is bad.", file=filename, partition=partition) from exc
                # Some lines end with CRLF, others with LF (a real published file does this):
                # DuckDB's reader takes one kind, so the file is read again with LF throughout.
                with files.normalized_copy(path) as normalized:
                    rows = self._replace_bronze(conn, schema, partition, filename, normalized,
                                                max_quarantine_fraction)
        return BronzeResult(filename, rows)

    def _replace_bronze(self, conn, schema: TripSchema, partition: str, filename: str, path,
                        max_quarantine_fraction: float) -> int:
        """One transaction: the file's rows in bronze replaced by the file's; returns their number."""
        table = f"bronze.{schema.table}"
        csv_columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in schema.sql_names) + "}"
        compression = "gzip" if files.sniff(path)[0] == files.GZIP else "none"  # by content
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(f"DELETE FROM {table} WHERE filename = ?", [filename])
            # Columns by position (the header was checked against the contract already);
            # every field as text: typing is silver's job, so nothing is lost here.
            conn.execute(
                f"INSERT INTO {table} SELECT *, ? FROM read_csv(?, header = true, "
                f"columns = {csv_columns}, auto_detect = false, delim = ',', quote = '\"', "
                f"escape = '\"', strict_mode = true, compression = '{compression}')",
                [filename, str(path)])
            rows = conn.execute(f"SELECT count(*) FROM {table} WHERE filename = ?",
                                [filename]).fetchone()[0]
            if rows == 0:
                raise BadInputError(
                    f"{filename} (partition {partition}) has a header but no trip rows; "
                    "the previous load of this month (if any) is kept. Check the source file.",
                    file=filename, partition=partition)
            # The typing gate runs here too, so a file silver would refuse never replaces
            # a good month in bronze either.
            self._gate_untypable(conn, schema, partition, filename, table, rows,
                                 max_quarantine_fraction)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return rows

    # -- silver --------------------------------------------------------------------------
    def _silver_ddl(self, schema: TripSchema) -> list[str]:
        typed = ", ".join(f'"{c.sql_name}" {_SQL_TYPES[c.type]}' for c in schema.columns)
        raw = ", ".join(f'"{c}" VARCHAR' for c in schema.sql_names)
        return [
            "CREATE SCHEMA IF NOT EXISTS silver",
            f"CREATE TABLE IF NOT EXISTS silver.{schema.table} "
            # md5 hex does not compress; DuckDB's analysis of it cost more than the write itself.
            f"(unique_row_id VARCHAR NOT NULL USING COMPRESSION uncompressed, "
            f"filename VARCHAR NOT NULL, {typed})",
            f"CREATE TABLE IF NOT EXISTS silver.{schema.table}_quarantine "
            f"(filename VARCHAR, line_number BIGINT, reason VARCHAR, {raw})",
        ]

    def build_silver(self, schema: TripSchema, partition: str, filename: str,
                     max_quarantine_fraction: float = 0.01) -> SilverResult:
        bronze, silver = f"bronze.{schema.table}", f"silver.{schema.table}"
        quarantine = f"silver.{schema.table}_quarantine"
        typed_cols = ", ".join(f'{_typed(c.sql_name, c.type)} AS "{c.sql_name}"' for c in schema.columns)
        raw_cols = ", ".join(f'"{c}" AS "{c}__raw"' for c in schema.sql_names)
        # Typed from bronze in a subquery, so each cast is written once and both the filter
        # (text present but no typed value) and the key read it.
        def typed_from(condition: str = "true") -> str:
            return (f"(SELECT bronze.rowid AS bronze_rowid, {typed_cols}, {raw_cols} "
                    f"FROM {bronze} AS bronze WHERE filename = ? AND {condition})")
        typed_from_bronze = typed_from()
        untypable = [f'("{c.sql_name}" IS NULL AND "{c.sql_name}__raw" IS NOT NULL '
                     f"AND trim(\"{c.sql_name}__raw\") <> '')" for c in schema.columns if c.type != TEXT]
        any_untypable = " OR ".join(untypable)
        key = ", ".join(_key_text(c, schema.column(c).type) for c in schema.key_columns)
        key_values = ", ".join(_key_value(c, schema.column(c).type) for c in schema.key_columns)
        # The rows that can be typed, with the text their unique_row_id is the md5 of.
        keyed = (f"(SELECT concat_ws('|', {key}) AS key_text, * FROM {typed_from_bronze} "
                 f"WHERE NOT ({any_untypable}))")
        silver_cols = ", ".join(f'"{c}"' for c in schema.sql_names)
        pickup = f'"{schema.pickup}"'
        start, end = month_bounds(partition)
        log = get_dagster_logger()

        with self.connect() as conn:
            for ddl in self._silver_ddl(schema):
                conn.execute(ddl)
            rows_in = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'bronze' "
                "AND table_name = ?", [schema.table]).fetchone()[0] and conn.execute(
                f"SELECT count(*) FROM {bronze} WHERE filename = ?", [filename]).fetchone()[0]
            if not rows_in:
                raise BadInputError(
                    f"{filename} (partition {partition}) is not in {bronze}: materialize "
                    f"bronze/{schema.table} for {partition} first (select '*silver/{schema.table}' "
                    "to run the upstream layers in the same run).", file=filename, partition=partition)
            conn.execute("BEGIN TRANSACTION")
            try:
                # Pass 1 (no text built): the rows that can be typed, with a 64-bit hash of
                # their key's typed values. Equal key text means equal hash, so the few repeated
                # hashes are the only candidates for duplicates.
                conn.execute(f"""
                    CREATE OR REPLACE TEMP TABLE _keys AS
                    SELECT bronze_rowid, hash({key_values}) AS key_hash, {pickup} AS pickup
                    FROM {typed_from_bronze} WHERE NOT ({any_untypable})""", [filename])
                good, lo, hi = conn.execute("SELECT count(*), min(pickup), max(pickup) FROM _keys").fetchone()
                bad = rows_in - good
                reasons_summary = self._untypable_by_column(conn, schema, bronze, filename) if bad else []
                if bad / rows_in > max_quarantine_fraction:
                    raise _too_many_untypable(schema, partition, filename, rows_in, bad,
                                              reasons_summary, max_quarantine_fraction)
                conn.execute(f"DELETE FROM {quarantine} WHERE filename = ?", [filename])
                if bad:  # the rare case: find the lines and say why, column by column
                    reasons = ", ".join(
                        f"CASE WHEN {cond} THEN '{c.sql_name}: cannot read ''' || \"{c.sql_name}__raw\" "
                        f"|| ''' as {_SQL_TYPES[c.type]}' END"
                        for c, cond in zip([c for c in schema.columns if c.type != TEXT], untypable))
                    raw_select = ", ".join(f'"{c}__raw"' for c in schema.sql_names)
                    conn.execute(f"""
                        INSERT INTO {quarantine}
                        SELECT ?, line_number, reason, {raw_select} FROM (
                          SELECT row_number() OVER (ORDER BY bronze_rowid) + 1 AS line_number,
                                 NULLIF(concat_ws('; ', {reasons}), '') AS reason, *
                          FROM {typed_from_bronze})
                        WHERE reason IS NOT NULL ORDER BY line_number""", [filename, filename])
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
                    [filename])
                collapsed = conn.execute("SELECT count(*) FROM _later_duplicates").fetchone()[0]
                distinct = good - collapsed
                conn.execute(f"DELETE FROM {silver} WHERE filename = ?", [filename])
                # Pass 2, the one that writes: type, hash, insert. An id already owned by an
                # earlier month's file stays there (whatever the load order), so it is left out.
                # No ORDER BY: silver's row order is not file order (sorting 7M rows for it would
                # cost more than the insert); which line of an id is kept was settled above.
                owned_earlier = conn.execute(
                    f"SELECT count(*) FROM {silver} WHERE filename < ? AND {pickup} BETWEEN ? AND ?",
                    [filename, lo, hi]).fetchone()[0]
                conn.execute(f"""
                    INSERT INTO {silver}
                    SELECT unique_row_id, ?, {silver_cols} FROM (
                      SELECT md5(key_text) AS unique_row_id, * FROM {keyed}
                      WHERE bronze_rowid NOT IN (SELECT bronze_rowid FROM _later_duplicates)) k
                    {f'''WHERE unique_row_id NOT IN (SELECT unique_row_id FROM {silver}
                          WHERE filename < ? AND {pickup} BETWEEN ? AND ?)''' if owned_earlier else ''}""",
                    [filename, filename] + ([filename, lo, hi] if owned_earlier else []))
                # A later month's file holding one of ours gives it up.
                if conn.execute(f"SELECT count(*) FROM {silver} WHERE filename > ? AND {pickup} "
                                "BETWEEN ? AND ?", [filename, lo, hi]).fetchone()[0]:
                    conn.execute(f"""
                        DELETE FROM {silver} WHERE filename > ? AND {pickup} BETWEEN ? AND ?
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
            log.warning(f"{filename}: {bad} rows quarantined in {quarantine}")
        return SilverResult(
            filename=filename, rows_in=rows_in, rows_out=rows_out,
            duplicates_collapsed=collapsed, duplicates_in_other_files=distinct - rows_out,
            rows_quarantined=bad, quarantine_reasons=reasons_summary,
            pickups_outside_month=outside)

    def _untypable_by_column(self, conn, schema: TripSchema, bronze: str,
                             filename: str) -> list[tuple[str, int, str]]:
        """(column, rows, an example value) for every column with text that cannot be typed."""
        counts = ", ".join(
            f"count(*) FILTER (WHERE {_untypable(c.sql_name, c.type)}), "
            f"any_value({c.sql_name}) FILTER (WHERE {_untypable(c.sql_name, c.type)})"
            for c in schema.columns)
        row = conn.execute(f"SELECT {counts} FROM {bronze} WHERE filename = ?", [filename]).fetchone()
        return [(c.sql_name, row[2 * i], repr(row[2 * i + 1]))
                for i, c in enumerate(schema.columns) if row[2 * i]]

    def _gate_untypable(self, conn, schema: TripSchema, partition: str, filename: str, bronze: str,
                        rows: int, max_fraction: float) -> None:
        """Fail (inside the caller's transaction) when too many of the file's ``rows`` cannot be
        typed."""
        any_bad = " OR ".join(f"({_untypable(c.sql_name, c.type)})" for c in schema.columns
                              if c.type != TEXT)
        # A WHERE, not count(*) FILTER: DuckDB evaluates a filter's conditions adaptively.
        bad = conn.execute(f"SELECT count(*) FROM {bronze} WHERE filename = ? AND ({any_bad})",
                           [filename]).fetchone()[0]
        if rows and bad / rows > max_fraction:
            raise _too_many_untypable(schema, partition, filename, rows, bad,
                                      self._untypable_by_column(conn, schema, bronze, filename), max_fraction)


def _untypable(column: str, kind: str) -> str:
    """SQL: true when the landed text of ``column`` is present but cannot become ``kind``."""
    if kind == TEXT:
        return "false"
    # The cast first: it almost never fails, so trim() runs on a handful of values, not all.
    return f"({_typed(column, kind)} IS NULL AND {column} IS NOT NULL AND trim({column}) <> '')"


def _too_many_untypable(schema, partition, filename, rows, bad, by_column, max_fraction) -> BadInputError:
    detail = "; ".join(f"column {col}: {n} rows, e.g. {example}" for col, n, example in by_column)
    return BadInputError(
        f"{filename} (partition {partition}): {bad} of {rows} rows ({bad / rows:.1%}) cannot be "
        f"typed, more than the {max_fraction:.1%} allowed (TAXI_MAX_QUARANTINE_FRACTION). "
        f"{detail}. Nothing was changed for this month; fix the file, or the column contract "
        "in taxi_platform/schemas.py if TLC changed a type.",
        file=filename, partition=partition, column=by_column[0][0] if by_column else None)
