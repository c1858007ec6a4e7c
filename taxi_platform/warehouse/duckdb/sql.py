"""DuckDB's SQL for typing the landed text and keying the rows (pure builders, tested without a
file). The id contract these implement is in taxi_platform/warehouse/port.py."""

from __future__ import annotations

from taxi_platform.schemas import DOUBLE, INTEGER, KEY_AMOUNTS, TEXT, TIMESTAMP

SQL_TYPES = {INTEGER: "INTEGER", TIMESTAMP: "TIMESTAMP", DOUBLE: "DOUBLE", TEXT: "VARCHAR"}
# The shape of a published timestamp (what PostgreSQL's and BigQuery's typing also require):
# DuckDB would also read 'epoch', 'infinity' or a five-digit year as a timestamp.
TIMESTAMP_SHAPE = r"^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def typed(column: str, kind: str) -> str:
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
    return f"TRY_CAST({column} AS {SQL_TYPES[kind]})"


def untypable(column: str, kind: str, value: str | None = None) -> str:
    """SQL: true when the landed text of ``column`` is present but cannot become ``kind``
    (``value``: its typed value, where a query has it already; else typed here)."""
    if kind == TEXT:
        return "false"
    # The cast first: it almost never fails, so trim() runs on a handful of values, not all.
    return f"({value or typed(column, kind)} IS NULL AND {column} IS NOT NULL AND trim({column}) <> '')"


def key_amount(column: str) -> str:
    """An amount as hashed into unique_row_id, from the landed text through DECIMAL: rounds half
    away from zero, as PostgreSQL's numeric and BigQuery's NUMERIC do, and DECIMAL has no
    negative zero. DECIMAL(18, 4) is a 64-bit integer, several times faster than
    DECIMAL(38, 4), which is kept for amounts too large for it. An amount too large for that
    (1e34 and more) is written as its double's shortest round-trip text (``1e+40``), never
    as NULL. Reads ``<column>__raw`` (the text) and ``<column>`` (the typed double)."""
    raw = f'"{column}__raw"'
    return (f"coalesce(CAST(round(TRY_CAST({raw} AS DECIMAL(18, 4)), 2) AS DECIMAL(18, 2))::VARCHAR, "
            f"CAST(round(TRY_CAST({raw} AS DECIMAL(38, 4)), 2) AS DECIMAL(38, 2))::VARCHAR, "
            f'CAST("{column}" AS VARCHAR), \'\')')


def key_text(column: str, kind: str) -> str:
    """A key column as the text hashed into unique_row_id (from the typed columns, and the
    landed text of amounts)."""
    if kind == TIMESTAMP:
        return f"coalesce(strftime({column}, '%Y-%m-%d %H:%M:%S'), '')"
    if column in KEY_AMOUNTS:
        return key_amount(column)
    return f"coalesce(CAST({column} AS VARCHAR), '')"


def key_value(column: str, kind: str) -> str:
    """A key column as a value that is equal exactly when its key text is (cheaper than the
    text: timestamps to the second, as the text has them)."""
    if kind == TIMESTAMP:
        return f"date_trunc('second', {column})"
    if column in KEY_AMOUNTS:
        return key_amount(column)
    return column
