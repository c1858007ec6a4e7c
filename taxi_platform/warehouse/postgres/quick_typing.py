"""PostgreSQL's quick way to type and key a month: one pass, no cast tested first, that vouches
only for values whose type it can prove cheaply (plain casts, and timestamps that read back as
exactly the text they came from). Any other value makes the pass fail with a data exception,
inside a savepoint, and the month is typed the careful way (sql.py). Both ways give the same
types and ids for every value the quick way accepts: tests/integration/test_postgres_warehouse.py
(``test_odd_but_typable_values_take_the_quick_path_and_match_duckdb`` and the edge-value tests)
hold them to it."""

from __future__ import annotations

from taxi_platform.schemas import DOUBLE, INTEGER, KEY_AMOUNTS, TEXT, TIMESTAMP, TripSchema
from taxi_platform.warehouse.postgres.sql import decimal, month_counts


def _give_up(column: str, pg_type: str) -> str:
    """SQL of type ``pg_type`` that fails with a data exception (division by zero) when it is
    evaluated: how the quick typing pass gives up on a value it cannot vouch for. It reads
    ``column`` (never NULL where it is used) so that the planner cannot evaluate it ahead."""
    return f"(1 / (octet_length({column}) * 0))::text::{pg_type}"


def _quick_typed(column: str, kind: str) -> str:
    """The quick way to type: the landed text ``column`` as its silver type, equal to
    :func:`typed`'s value, or a data exception where that needs the careful way. NULL and ''
    give NULL, and text the cast refuses raises. INTEGER: text both float8 and integer read
    is a whole number in range (hex too) and they agree on it; float8 refuses the forms only
    integer reads (1_000, 0o17, 0b1). TIMESTAMP: kept only when it prints back as exactly its
    text (``YYYY-MM-DD HH:MM:SS``, DateStyle ISO, 19 characters: four-digit years), which has
    ``TIMESTAMP_SHAPE`` and which ``to_char`` gives back for the id; any other timestamp text
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
    :func:`typed`'s values. A timestamp's text is the landed text itself. An amount goes
    through numeric from its text, directly when float8 reads it as a finite number below
    1e30 and it is not hex (such text has ``_DECIMAL_SHAPE`` and fits numeric(38,4)), else
    by :func:`_decimal`."""
    if kind == TIMESTAMP:
        return f"coalesce({column}, '')"
    if column in KEY_AMOUNTS:
        dec = (f"CASE WHEN nullif({column}, '')::float8 BETWEEN '-1e30'::float8 AND '1e30'::float8 "
               f"AND strpos({column}, 'x') = 0 AND strpos({column}, 'X') = 0 "
               f"THEN {column}::numeric(38,4) ELSE {decimal(column, modern)} END")
        # rounds as round(, 2) does; an amount of 1e34 or more is its float8's text
        return f"coalesce(({dec})::numeric(38,2)::text, nullif({column}, '')::float8::text, '')"
    if kind == INTEGER:
        return f"coalesce(nullif({column}, '')::integer::text, '')"
    raise ValueError(f"{column} ({kind}) is not a key column")


def quick_gate_sql(schema: TripSchema, landed: str) -> str:
    """SQL reading every value of the file's landed rows the quick way: a data exception
    unless every value is typable or blank (no row is untypable). In the same pass, the rows
    and those whose pickup text is within the month (parameters: the month's text bounds,
    start and end, then the load id)."""
    checks = ", ".join(_quick_check(c.sql_name, c.type) for c in schema.columns if c.type != TEXT)
    counts = month_counts(f'"{schema.pickup}"')
    return f"SELECT {counts}, min(num_nulls({checks})) FROM {landed} WHERE load_id = %s"


def quick_keyed_sql(schema: TripSchema, landed: str, modern: bool = True) -> str:
    """The file's landed rows (``%s``: the load id) typed and hashed the quick way:
    unique_row_id, line_number and the silver columns; a data exception where the careful
    way is needed. One level, no subquery: the planner can run all of it in parallel workers
    (a timestamp is read twice, which costs less than holding it in a subquery)."""
    key = "md5(" + " || '|' || ".join(
        _quick_key_text(c, schema.column(c).type, modern) for c in schema.key_columns) + ")"
    typed = ", ".join(f"{_quick_typed(c.sql_name, c.type)} AS {c.sql_name}" for c in schema.columns)
    return f'SELECT {key} COLLATE "C" AS unique_row_id, line_number, {typed} FROM {landed} WHERE load_id = %s'
