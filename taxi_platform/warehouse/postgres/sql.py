"""PostgreSQL's SQL for typing the landed text and keying the rows, the careful way: every cast
tested first (``pg_input_is_valid`` from PostgreSQL 16, small plpgsql functions before), so
that untypable values become NULL with a reason (pure builders, tested without a server). The
quick way, tried first, is quick_typing.py; the id contract is in taxi_platform/warehouse/port.py."""

from __future__ import annotations

import re

from taxi_platform.schemas import DOUBLE, INTEGER, KEY_AMOUNTS, TEXT, TIMESTAMP, TripSchema

SQL_TYPES = {INTEGER: "integer", TIMESTAMP: "timestamp", DOUBLE: "double precision", TEXT: "text"}
# Text PostgreSQL reads as a number but DuckDB's DECIMAL does not (NaN, Infinity) is kept out
# of the key with this shape check; the cast itself is then checked by the server.
_DECIMAL_SHAPE = r"'^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$'"
# PostgreSQL reads 'now', 'today', 'Jan 1 2019' as timestamps; the files write YYYY-MM-DD.
TIMESTAMP_SHAPE = r"'^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}'"
# A float8 is finite when it lies between the largest negative and positive ones (NaN sorts
# above every number in PostgreSQL, Infinity beyond the largest).
_FINITE = "BETWEEN '-1.7976931348623157e308'::float8 AND '1.7976931348623157e308'::float8"

# Before PostgreSQL 16 (no pg_input_is_valid) a cast is tested by these functions instead.
FALLBACK_FUNCTIONS = {
    "float8": "double precision",
    "timestamp": "timestamp",
    "numeric(38,4)": "numeric(38,4)",
}


def fallback_name(pg_type: str) -> str:
    return "bronze.taxi_valid_" + re.sub(r"[^a-z0-9]+", "_", pg_type).strip("_")


def valid(column: str, pg_type: str, modern: bool) -> str:
    """SQL: true when the text ``column`` casts to ``pg_type`` without error."""
    if modern:
        return f"pg_input_is_valid({column}, '{pg_type}')"
    return f"{fallback_name(pg_type)}({column})"


def typed(column: str, kind: str, modern: bool = True) -> str:
    """SQL turning the landed text ``column`` into its silver type (NULL when it cannot),
    accepting what DuckDB's TRY_CAST accepts for the files' values."""
    if kind == TEXT:
        return column
    if kind == INTEGER:  # whole numbers only: '1' and '1.0', not '1.5'
        f8 = f"{column}::float8"
        return (f"CASE WHEN {valid(column, 'float8', modern)} THEN CASE WHEN {f8} = floor({f8}) "
                f"AND {f8} BETWEEN -2147483648 AND 2147483647 THEN {f8}::integer END END")
    if kind == DOUBLE:  # not NaN or Infinity, which float8 reads
        return (f"CASE WHEN {valid(column, 'float8', modern)} THEN CASE WHEN {column}::float8 {_FINITE} "
                f"THEN {column}::float8 END END")
    if kind == TIMESTAMP:
        return (f"CASE WHEN {column} ~ {TIMESTAMP_SHAPE} THEN CASE WHEN "
                f"{valid(column, 'timestamp', modern)} THEN {column}::timestamp END END")
    raise ValueError(kind)


def decimal(column: str, modern: bool = True) -> str:
    """The landed text as numeric(38,4) (as DuckDB's DECIMAL(38, 4): rounds half away from
    zero), or NULL."""
    return (f"CASE WHEN {column} ~ {_DECIMAL_SHAPE} THEN CASE WHEN "
            f"{valid(column, 'numeric(38,4)', modern)} THEN {column}::numeric(38,4) END END")


def month_counts(pickup: str) -> str:
    """SQL of two aggregates: the rows, and those whose pickup text (the quoted column ``pickup``)
    is within the month (parameters: the month's text bounds, start and end)."""
    return f"count(*), count(*) FILTER (WHERE {pickup} >= %s AND {pickup} < %s)"


def untypable(column: str, kind: str, modern: bool = True) -> str:
    """SQL: true when the landed text of ``column`` is present but cannot become ``kind``."""
    if kind == TEXT:
        return "false"
    return f"({column} IS NOT NULL AND trim({column}) <> '' AND {typed(column, kind, modern)} IS NULL)"


def key_text_sql(column: str, kind: str) -> str:
    """A key column as the text hashed into unique_row_id (from the typed temp table)."""
    if kind == TIMESTAMP:
        return f"coalesce(to_char({column}, 'YYYY-MM-DD HH24:MI:SS'), '')"
    if column in KEY_AMOUNTS:  # numeric has no negative zero: round(-0.004, 2) is 0.00
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
