"""BigQuery's GoogleSQL for typing the landed text, keying the rows and replacing a month (pure
builders, tested without a server: tests/unit/test_bigquery_sql.py), and the helpers that let the
same SQL run on an emulator. The id contract these implement is in taxi_platform/warehouse/port.py."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from taxi_platform.schemas import DOUBLE, INTEGER, KEY_AMOUNTS, REASON_TYPES, TEXT, TIMESTAMP, TripSchema

BQ_TYPES = {INTEGER: "INT64", TIMESTAMP: "DATETIME", DOUBLE: "FLOAT64", TEXT: "STRING"}
LAYERS = ("bronze", "silver", "staging", "seeds", "gold", "marts")  # dbt: macros/generate_schema_name.sql
_LAYER_NAME = re.compile(rf"(?<![\w.`])({'|'.join(LAYERS)})\.(\w+)")


def typed_sql(column: str, kind: str) -> str:
    """The landed STRING ``column`` as its silver type, NULL when it cannot be read (the
    values DuckDB's TRY_CAST reads: whole numbers only for integers, 32-bit range)."""
    if kind == TEXT:
        return column
    f64 = f"SAFE_CAST(TRIM({column}) AS FLOAT64)"
    if kind == INTEGER:
        return (f"IF({f64} = FLOOR({f64}) AND {f64} BETWEEN -2147483648 AND 2147483647, "
                f"CAST({f64} AS INT64), NULL)")
    if kind == DOUBLE:
        return f64
    if kind == TIMESTAMP:
        return f"SAFE_CAST(TRIM({column}) AS DATETIME)"
    raise ValueError(kind)


def decimal_sql(column: str) -> str:
    """The landed text as NUMERIC rounded to four decimals (DuckDB's DECIMAL(38, 4))."""
    return f"ROUND(SAFE_CAST(TRIM({column}) AS NUMERIC), 4)"


def untypable_sql(column: str, kind: str) -> str:
    if kind == TEXT:
        return "FALSE"
    return f"({column} IS NOT NULL AND TRIM({column}) <> '' AND {typed_sql(column, kind)} IS NULL)"


def key_text_sql(column: str, kind: str) -> str:
    """A key column as the text hashed into unique_row_id (from the typed temp table)."""
    if kind == TIMESTAMP:
        return f"COALESCE(FORMAT_DATETIME('%Y-%m-%d %H:%M:%S', {column}), '')"
    if column in KEY_AMOUNTS:
        # Whole cents, then '<units>.<cents>' with exactly two digits (NUMERIC has no -0).
        cents = f"CAST(ROUND({column}__dec, 2) * 100 AS INT64)"
        return (f"COALESCE(CONCAT(IF({cents} < 0, '-', ''), CAST(DIV(ABS({cents}), 100) AS STRING), "
                f"'.', LPAD(CAST(MOD(ABS({cents}), 100) AS STRING), 2, '0')), '')")
    return f"COALESCE(CAST({column} AS STRING), '')"


def unique_row_id_sql(schema: TripSchema) -> str:
    return "TO_HEX(MD5(" + " || '|' || ".join(
        key_text_sql(c, schema.column(c).type) for c in schema.key_columns) + "))"


def typed_select_sql(schema: TripSchema, source: str) -> str:
    """SELECT over the rows of one landed load of ``source`` (``@filename``, ``@load_id``: the
    table is clustered by them): typed columns, the key amounts as decimals, the raw text, and
    the quarantine reason."""
    typed_cols = ",\n  ".join(f"{typed_sql(c.sql_name, c.type)} AS {c.sql_name}" for c in schema.columns)
    decimals = ",\n  ".join(f"{decimal_sql(c)} AS {c}__dec" for c in KEY_AMOUNTS)
    raw_cols = ",\n  ".join(f"{c} AS {c}__raw" for c in schema.sql_names)
    reasons = ", ".join(
        f"IF({c.sql_name}__raw IS NOT NULL AND TRIM({c.sql_name}__raw) <> '' AND {c.sql_name} IS NULL, "
        # (GoogleSQL escapes a quote with a backslash, so the texts are double-quoted)
        f"CONCAT(\"{c.sql_name}: cannot read '\", {c.sql_name}__raw, \"' as {REASON_TYPES[c.type]}\"), NULL)"
        for c in schema.columns if c.type != TEXT)
    return (f"SELECT *, NULLIF(ARRAY_TO_STRING([{reasons}], '; '), '') AS reason FROM (\n"
            f"  SELECT {typed_cols},\n  {decimals},\n  {raw_cols}\n"
            f"  FROM {source} WHERE filename = @filename AND load_id = @load_id)")


def silver_script(schema: TripSchema, landed: str, silver: str, quarantine: str, tag: str = "") -> str:
    """One multi-statement transaction replacing the month's rows (``@file_csv``, ``@file_parquet``:
    whichever it held) in silver and quarantine with the load's (``@filename``, ``@load_id``);
    ends with a SELECT of (rows_in, bad, distinct, rows_out, outside). Every read of silver is
    limited to the month's files, or to the partitions (``DATE(pickup)`` from ``@first_day`` to
    ``@last_day``, and NULL) where a row with one of the month's ids can be (an id's pickup is part
    of it):
    a month's load reads that month's blocks, not the table. ``tag`` ends the names of the
    script's two temp tables: BigQuery scopes temp tables to the script, but an emulator
    (bqemulator 1.4) keeps them for its lifetime in one namespace, so a re-run or a concurrent
    script (another colour) would find them there; a fresh tag per run avoids it."""
    cols = ", ".join(schema.sql_names)
    raw = ", ".join(f"{c}__raw" for c in schema.sql_names)
    pickup = schema.pickup
    typed, keyed = f"_typed{tag}", f"_keyed{tag}"
    # and the NULL partition: rows without a pickup share that part of the key
    window = f"(DATE({pickup}) BETWEEN @first_day AND @last_day OR {pickup} IS NULL)"
    return f"""
BEGIN TRANSACTION;
CREATE TEMP TABLE {typed} AS {typed_select_sql(schema, landed)};
CREATE TEMP TABLE {keyed} AS
  SELECT {unique_row_id_sql(schema)} AS unique_row_id, {cols} FROM {typed} WHERE reason IS NULL;
DELETE FROM {quarantine} WHERE filename IN (@file_csv, @file_parquet);
INSERT INTO {quarantine} (filename, line_number, reason, {cols})
  SELECT @filename, CAST(NULL AS INT64), reason, {raw} FROM {typed} WHERE reason IS NOT NULL;
DELETE FROM {silver} WHERE filename IN (@file_csv, @file_parquet);
DELETE FROM {silver} WHERE {window} AND filename > @filename
  AND unique_row_id IN (SELECT unique_row_id FROM {keyed});
INSERT INTO {silver} (unique_row_id, filename, {cols})
  SELECT unique_row_id, @filename, {cols} FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY unique_row_id ORDER BY TO_JSON_STRING(k)) AS n
    FROM {keyed} k
    WHERE unique_row_id NOT IN (SELECT unique_row_id FROM {silver} WHERE {window} AND filename < @filename))
  WHERE n = 1;
COMMIT TRANSACTION;
SELECT (SELECT COUNT(*) FROM {typed}) AS rows_in,
       (SELECT COUNTIF(reason IS NOT NULL) FROM {typed}) AS bad,
       (SELECT COUNT(DISTINCT unique_row_id) FROM {keyed}) AS distinct_ids,
       (SELECT COUNT(*) FROM {silver} WHERE filename = @filename) AS rows_out,
       (SELECT COUNTIF({pickup} < @month_start OR {pickup} >= @month_end) FROM {silver}
        WHERE filename = @filename) AS outside;
"""


_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)""")
_NAMED_PARAM = re.compile(r"(?<!@)@(\w+)")  # not @@system_variables


def sql_literal(value: Any) -> str:
    """``value`` as a GoogleSQL literal (datetimes as DATETIME, as ``_params`` binds them)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST('{value!r}' AS FLOAT64)"
    if isinstance(value, dt.datetime):
        return f"DATETIME '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    text = str(value)
    for char, escaped in (("\\", "\\\\"), ("'", "\\'"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(char, escaped)
    return f"'{text}'"


def inline_parameters(sql: str, params: dict[str, Any]) -> str:
    """``sql`` with each ``@name`` (outside quoted strings) replaced by its value as a
    literal. Only for an emulator that binds no parameters inside scripts (see
    ``BigQueryWarehouseResource._script``); a name without a value is an error."""
    def literal(match: re.Match) -> str:
        if match[1] not in params:
            raise KeyError(f"no value for query parameter @{match[1]}")
        return sql_literal(params[match[1]])

    parts = _QUOTED.split(sql)
    return "".join(p if i % 2 else _NAMED_PARAM.sub(literal, p) for i, p in enumerate(parts))


def qualify_layers(sql: str, bronze_dataset: str, silver_dataset: str, dataset: str = "") -> str:
    """``bronze.<t>``/``silver.<t>`` (as the assets and tools write them) as this
    warehouse's datasets, outside quoted strings; with ``dataset`` (GCP_DATASET) also dbt's
    layers ``staging``, ``seeds``, ``gold``, ``marts`` as ``<dataset>_<layer>``, where dbt
    builds them on BigQuery."""
    names = {"bronze": bronze_dataset, "silver": silver_dataset,
             **{layer: f"{dataset}_{layer}" if dataset else layer for layer in LAYERS[2:]}}
    parts = _QUOTED.split(sql)
    return "".join(p if i % 2 else _LAYER_NAME.sub(lambda m: f"{names[m[1]]}.{m[2]}", p)
                   for i, p in enumerate(parts))
