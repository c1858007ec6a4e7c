"""Deterministic synthetic months in each colour's exact published layout.

Written by DuckDB straight from SQL (no Python loop over rows), so a 7-million-row month
takes seconds. Two layouts, the same trips:

- the CSV mirror's (:func:`write_month`): ``<out>/<colour>/<colour>_tripdata_YYYY-MM.csv.gz``,
  the real header and column order, CRLF line endings, every field as text, empty fields where
  the real files have them;
- the TLC's own Parquet (:func:`write_month_parquet`): ``<out>/<colour>_tripdata_YYYY-MM.parquet``
  (flat, like https://d37ci6vzurychx.cloudfront.net/trip-data/), the TLC's column names and
  physical types, which drift between months (see :func:`tlc_arrow_schema`), empty fields as
  nulls, plus the columns the CSV never has (``airport_fee``, ``cbd_congestion_fee``).

Both carry the real files' quirks in small doses:

- exact duplicate rows (the same trip twice: silver collapses them);
- pickups from earlier months (stray rows silver keeps, in their own pickup month);
- voided trips: a twin row with negated amounts (a different unique_row_id);
- rows with empty VendorID, passenger_count, RatecodeID and payment_type;
- distances written like the mirror (``.86``, ``.00``), amounts like ``7``, ``4.5``.

Randomness is DuckDB's hash of the row number, salted by the colour (each colour has its own
trips; yellow's stream is the unsalted one): with the pinned DuckDB, the same arguments give
the same bytes on every machine.
"""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
import subprocess
from pathlib import Path

import duckdb

from taxi_platform.partitions import month_bounds
from taxi_platform.schemas import CSV_GZ, FORMATS, PARQUET, SCHEMAS, TripSchema

# Shares of rows with each quirk, in parts per 10,000.
DUPLICATE_PER_10K = 5
STRAY_PER_10K = 10
VOIDED_PER_10K = 10
EMPTY_FIELDS_PER_10K = 50
# Shares of trips charged the optional fees of the TLC's files, in parts per 10,000.
AIRPORT_FEE_PER_10K = 400  # 1.75 at a LaGuardia or JFK pick-up (yellow)
CBD_FEE_PER_10K = 3000  # 0.75 into the Manhattan congestion relief zone (from 2025-01)

# Each colour its own random stream: a salt mixed into every hash (0: unsalted, so yellow's
# trips are those the generator always wrote).
COLOUR_SALT = {"yellow": 0, "green": 1}

# Rows per Arrow batch read from DuckDB, and so per Parquet row group: a month is streamed,
# never whole in memory.
PARQUET_BATCH_ROWS = 500_000


def _lcg(expr: str, salt: int, stream: int = 0) -> str:
    """A pseudo-random non-negative integer from an integer SQL expression and a salt
    (DuckDB's hash: stable for the pinned DuckDB version on every machine); ``stream`` (a
    colour's salt) selects an independent stream, 0 the original one."""
    if stream:
        return f"hash(({expr}) * 64 + {salt}, {int(stream)})"
    return f"hash(({expr}) * 64 + {salt})"


def _num(expr: str) -> str:
    """An amount with two decimals (cheap to write, unlike printf)."""
    return f"CAST(({expr}) AS DECIMAL(9, 2))::VARCHAR"


def _amount(expr: str) -> str:
    """The same amount as :func:`_num`'s text, as a double (7.50 -> 7.5; never -0.0)."""
    return f"CAST(CAST(({expr}) AS DECIMAL(9, 2)) AS DOUBLE)"


def _distance(expr: str) -> str:
    """A distance written like the mirror: two decimals, no leading zero below one (.86, .00)."""
    text = f"CAST(({expr}) AS DECIMAL(9, 2))::VARCHAR"
    return f"CASE WHEN ({expr}) < 1 THEN substr({text}, 2) ELSE {text} END"


def _month_values(schema: TripSchema, month: str, rows: int, seed: int = 0
                  ) -> tuple[dict[str, str], dict[str, str], str]:
    """The month's trips as SQL: each column's text (the CSV's) and typed value (the TLC's), by
    generic name (``pickup``, ``dropoff``, then the header's names and the optional columns'
    sql names), both derived from the same random expressions, and the FROM clause they read."""
    start, end = month_bounds(month)
    seconds = int((end - start).total_seconds())
    epoch = int(start.replace(tzinfo=dt.UTC).timestamp())
    stream = COLOUR_SALT.get(schema.colour, 0)
    base = f"(i + {seed * 7919})"
    # j: the row whose content this row carries (a duplicate copies its predecessor).
    dup = f"({_lcg(base, 1, stream)} % 10000 < {DUPLICATE_PER_10K} AND i > 0)"
    j = f"(CASE WHEN {dup} THEN i - 1 ELSE i END + {seed * 7919})"
    salts = {"pu": 3, "dur": 5, "pax": 7, "dist": 11, "loc1": 13, "loc2": 17, "pay": 19, "tip": 23,
             "flag": 29, "stray": 31, "void": 37, "empty": 41, "vendor": 43, "trip_type": 47,
             "extra": 53, "airport": 59, "cbd": 61}
    r = {k: _lcg(j, salt, stream) for k, salt in salts.items()}
    stray = f"({r['stray']} % 10000 < {STRAY_PER_10K})"
    sign = f"(CASE WHEN {r['void']} % 10000 < {VOIDED_PER_10K} THEN -1 ELSE 1 END)"
    empty = f"({r['empty']} % 10000 < {EMPTY_FIELDS_PER_10K})"
    pickup_epoch = (f"(CASE WHEN {stray} THEN {epoch} - 1 - {r['pu']} % (86400 * 90) "
                    f"ELSE {epoch} + {r['pu']} % {seconds} END)")
    distance = f"(({r['dist']} % 1500) / 100.0)"
    fare = f"(2.5 + round({distance} * 2.5 * 2) / 2)"
    tip = f"(CASE WHEN {r['pay']} % 3 = 0 THEN 0 ELSE ({r['tip']} % 500) / 100.0 END)"
    late_2019 = month >= "2019-02"
    congestion = "2.5" if late_2019 else None
    # Integers as numbers (NULL where the CSV's field is empty).
    ints = {
        "VendorID": f"CASE WHEN {empty} THEN NULL ELSE 1 + {r['vendor']} % 2 END",
        "passenger_count": f"CASE WHEN {empty} THEN NULL ELSE 1 + {r['pax']} % 6 END",
        "RatecodeID": f"CASE WHEN {empty} THEN NULL ELSE 1 END",
        "PULocationID": f"1 + {r['loc1']} % 265",
        "DOLocationID": f"1 + {r['loc2']} % 265",
        "payment_type": f"CASE WHEN {empty} THEN NULL ELSE 1 + {r['pay']} % 2 END",
        "trip_type": f"CASE WHEN {empty} THEN NULL ELSE 1 + {r['trip_type']} % 2 END",
    }
    # Amounts before rounding to cents (None: an empty field).
    amounts = {
        "fare_amount": f"{sign} * {fare}",
        "extra": f"{sign} * ({r['extra']} % 3) * 0.5",
        "mta_tax": f"{sign} * 0.5",
        "tip_amount": f"{sign} * {tip}",
        "improvement_surcharge": f"{sign} * 0.3",
        "total_amount": (f"{sign} * ({fare} + ({r['extra']} % 3) * 0.5 + 0.8 + {tip}"
                         + (" + 2.5" if late_2019 else "") + ")"),
    }
    pickup = "make_timestamp(CAST(p.pickup_epoch AS BIGINT) * 1000000)"
    dropoff = f"make_timestamp(CAST(p.pickup_epoch + 60 + {r['dur']} % 3600 AS BIGINT) * 1000000)"
    text = {
        "VendorID": f"CASE WHEN {empty} THEN NULL ELSE (1 + {r['vendor']} % 2)::VARCHAR END",
        "pickup": f"{pickup}::VARCHAR",
        "dropoff": f"{dropoff}::VARCHAR",
        "passenger_count": f"CASE WHEN {empty} THEN NULL ELSE (1 + {r['pax']} % 6)::VARCHAR END",
        "trip_distance": _distance(distance),
        "RatecodeID": f"CASE WHEN {empty} THEN NULL ELSE '1' END",
        "store_and_fwd_flag": f"CASE WHEN {r['flag']} % 100 = 0 THEN 'Y' ELSE 'N' END",
        "PULocationID": f"(1 + {r['loc1']} % 265)::VARCHAR",
        "DOLocationID": f"(1 + {r['loc2']} % 265)::VARCHAR",
        "payment_type": f"CASE WHEN {empty} THEN NULL ELSE (1 + {r['pay']} % 2)::VARCHAR END",
        "tolls_amount": "'0'",
        "ehail_fee": "NULL",
        "trip_type": f"CASE WHEN {empty} THEN NULL ELSE (1 + {r['trip_type']} % 2)::VARCHAR END",
        "congestion_surcharge": f"'{congestion}'" if congestion else "NULL",
        **{name: _num(expr) for name, expr in amounts.items()},
    }
    typed = {
        **ints,
        "pickup": pickup,
        "dropoff": dropoff,
        "trip_distance": _amount(distance),
        "store_and_fwd_flag": text["store_and_fwd_flag"],
        "tolls_amount": "0.0",
        "ehail_fee": "NULL",
        "congestion_surcharge": f"{congestion}" if congestion else "NULL",
        **{name: _amount(expr) for name, expr in amounts.items()},
        # The TLC's files only. Not in total_amount, which stays the CSV's (the same trips).
        "airport_fee": (f"CASE WHEN {empty} THEN NULL WHEN {r['airport']} % 10000 < {AIRPORT_FEE_PER_10K} "
                        f"THEN {_amount(f'{sign} * 1.75')} ELSE 0.0 END"),
        "cbd_congestion_fee": (f"CASE WHEN {r['cbd']} % 10000 < {CBD_FEE_PER_10K} "
                               f"THEN {_amount(f'{sign} * 0.75')} ELSE 0.0 END"),
    }
    if schema.colour == "yellow" and month < OLDER_LAYOUTS_UNTIL:
        typed.update(_older_layout_values(month, r, empty, typed))
    source = f"(SELECT i, {pickup_epoch} AS pickup_epoch FROM range({rows}) t(i)) p"
    return text, typed, source


# Yellow before 2011 is published in older layouts (taxi_platform/sources/layouts.py).
OLDER_LAYOUTS_UNTIL = "2011-01"
# Shares of trips, in parts per 1,000, whose coordinate is not in a zone (each end drawn apart).
ZERO_POINT_PER_1K = 15  # 0, 0: the real files' most common "no fix"
FAR_POINT_PER_1K = 10  # a real place outside the city (other states), or lat/lon swapped
EMPTY_POINT_PER_1K = 5
FAR_POINTS = ((-75.1652, 39.9526), (-73.7562, 42.6526), (-74.4057, 40.0583), (40.7580, -73.9855))
VENDOR_NAMES = ("VTS", "CMT", "DDS")  # about 45%, 45% and 10% of the trips
PAYMENT_WORDS = {  # per payment_type code: the words each layout writes for it
    "2009": {1: ("CREDIT", "Credit"), 2: ("CASH", "Cash"), 3: ("No Charge",), 4: ("Dispute",)},
    "2010": {1: ("CRD", "Cre"), 2: ("CAS", "Cas"), 3: ("NOC",), 4: ("DIS",)},
}


def _older_layout_values(month: str, r: dict[str, str], empty: str, typed: dict[str, str]) -> dict[str, str]:
    """The values only the older yellow layouts have, by generic name: vendor names, payment words,
    and pickup/dropoff coordinates, most at a point inside a zone (``zones.point_inside``: the tests
    know each one's zone), some at 0/0, far from the city or empty."""
    from taxi_platform.sources import zones

    ids = zones.zone_ids()
    points = [zones.point_inside(i) for i in ids]
    lons = "[" + ", ".join(f"{lon:.6f}" for lon, _ in points) + "]"
    lats = "[" + ", ".join(f"{lat:.6f}" for _, lat in points) + "]"
    far_lons = "[" + ", ".join(str(lon) for lon, _ in FAR_POINTS) + "]"
    far_lats = "[" + ", ".join(str(lat) for _, lat in FAR_POINTS) + "]"

    def coordinate(rand: str, axis: str) -> str:
        kind = f"({rand} % 1000)"
        inside, far = (lons, far_lons) if axis == "lon" else (lats, far_lats)
        return (f"CASE WHEN {kind} < {ZERO_POINT_PER_1K} THEN 0.0 "
                f"WHEN {kind} < {ZERO_POINT_PER_1K + FAR_POINT_PER_1K} "
                f"THEN ({far}::DOUBLE[])[CAST(1 + ({rand} // 1000) % {len(FAR_POINTS)} AS BIGINT)] "
                f"WHEN {kind} < {ZERO_POINT_PER_1K + FAR_POINT_PER_1K + EMPTY_POINT_PER_1K} THEN NULL "
                f"ELSE ({inside}::DOUBLE[])[CAST(1 + ({rand} // 1000) % {len(ids)} AS BIGINT)] END")

    layout = "2009" if month < "2010-01" else "2010"
    words = PAYMENT_WORDS[layout]
    code = f"({r['pay']} % 100)"  # 1 credit and 2 cash as in later months; a few no charge, dispute
    payment = (f"CASE WHEN {empty} THEN NULL WHEN {code} = 0 THEN '{words[3][0]}' WHEN {code} = 1 THEN '{words[4][0]}' "
               + " ".join(f"WHEN {r['pay']} % 2 = {c - 1} AND {r['flag']} % 2 = {k} THEN '{w}'"
                          for c in (1, 2) for k, w in enumerate(words[c] * (3 - len(words[c]))))
               + " END")
    vendor = (f"CASE WHEN {r['vendor']} % 20 < 9 THEN 'VTS' WHEN {r['vendor']} % 20 < 18 THEN 'CMT' "
              "ELSE 'DDS' END")
    return {
        "vendor_name": vendor,
        "payment_type": payment,
        "pickup_text": f"strftime({typed['pickup']}, '%Y-%m-%d %H:%M:%S')",
        "dropoff_text": f"strftime({typed['dropoff']}, '%Y-%m-%d %H:%M:%S')",
        "pickup_lon": coordinate(r["loc1"], "lon"), "pickup_lat": coordinate(r["loc1"], "lat"),
        "dropoff_lon": coordinate(r["loc2"], "lon"), "dropoff_lat": coordinate(r["loc2"], "lat"),
        "rate_code": f"CASE WHEN {empty} THEN NULL ELSE 1 END",
        "flag_number": f"CASE WHEN {r['flag']} % 100 = 0 THEN 1.0 WHEN {empty} THEN NULL ELSE 0.0 END",
        "flag_text": f"CASE WHEN {r['flag']} % 100 = 0 THEN '1' WHEN {empty} THEN NULL ELSE '0' END",
    }


def _generic(name: str) -> str:
    """The generic name of a file's column: ``pickup``, ``dropoff``, ``airport_fee`` or itself."""
    if name.endswith("pickup_datetime"):
        return "pickup"
    if name.endswith("dropoff_datetime"):
        return "dropoff"
    return "airport_fee" if name.lower() == "airport_fee" else name


def month_sql(schema: TripSchema, month: str, rows: int, seed: int = 0) -> str:
    """The SELECT of the month's rows as the CSV mirror publishes them: the header's columns,
    every field as text (NULL: an empty field)."""
    text, _, source = _month_values(schema, month, rows, seed)
    select = [f'{text[_generic(name)]} AS "{name}"' for name in schema.header]
    return f"SELECT {', '.join(select)} FROM {source}"


def write_month(schema: TripSchema, month: str, rows: int, out_dir: Path, seed: int = 0,
                threads: int | None = None) -> Path:
    """Write ``<out_dir>/<colour>/<colour>_tripdata_<month>.csv.gz`` and return its path."""
    target = Path(out_dir) / schema.colour / schema.filename(month)
    target.parent.mkdir(parents=True, exist_ok=True)
    plain = target.with_name(f".{target.stem}.part")
    conn = duckdb.connect()
    if threads:
        conn.execute(f"SET threads = {int(threads)}")
    try:
        # DuckDB writes the CSV in parallel; its own gzip is single-threaded and slow, so
        # compress separately at level 1 (the bytes differ from TLC's; the content does not).
        conn.execute(
            f"COPY ({month_sql(schema, month, rows, seed)}) TO '{plain}' "
            "(FORMAT csv, HEADER true, NEW_LINE '\\r\\n')")
    finally:
        conn.close()
    _gzip(plain, target)
    return target


def _gzip(plain: Path, target: Path) -> None:
    """gzip -1 (pigz when installed), written beside the target and renamed into place."""
    tmp = target.with_name(f".{target.name}.part")
    tool = shutil.which("pigz") or shutil.which("gzip")
    try:
        if tool:
            with open(tmp, "wb") as out:
                subprocess.run([tool, "-1", "-c", "-n", str(plain)], stdout=out, check=True)
        else:
            with open(plain, "rb") as src, gzip.open(tmp, "wb", compresslevel=1, mtime=0) as out:
                shutil.copyfileobj(src, out, 1 << 20)
        tmp.replace(target)
    finally:
        plain.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


# The TLC's Parquet columns, in file order, before the optional fees (see tlc_arrow_schema).
TLC_COLUMNS = {
    "yellow": ("VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count",
               "trip_distance", "RatecodeID", "store_and_fwd_flag", "PULocationID", "DOLocationID",
               "payment_type", "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount",
               "improvement_surcharge", "total_amount", "congestion_surcharge"),
    "green": ("VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "store_and_fwd_flag",
              "RatecodeID", "PULocationID", "DOLocationID", "passenger_count", "trip_distance",
              "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "ehail_fee",
              "improvement_surcharge", "total_amount", "payment_type", "trip_type",
              "congestion_surcharge"),
}
# The older yellow layouts' columns as the TLC publishes them: (name, generic value, type).
OLDER_LAYOUT_COLUMNS = {
    "2009": (("vendor_name", "vendor_name", "string"), ("Trip_Pickup_DateTime", "pickup_text", "string"),
             ("Trip_Dropoff_DateTime", "dropoff_text", "string"), ("Passenger_Count", "passenger_count", "int64"),
             ("Trip_Distance", "trip_distance", "double"), ("Start_Lon", "pickup_lon", "double"),
             ("Start_Lat", "pickup_lat", "double"), ("Rate_Code", "rate_code", "double"),
             ("store_and_forward", "flag_number", "double"), ("End_Lon", "dropoff_lon", "double"),
             ("End_Lat", "dropoff_lat", "double"), ("Payment_Type", "payment_type", "string"),
             ("Fare_Amt", "fare_amount", "double"), ("surcharge", "extra", "double"),
             ("mta_tax", "mta_tax", "double"), ("Tip_Amt", "tip_amount", "double"),
             ("Tolls_Amt", "tolls_amount", "double"), ("Total_Amt", "total_amount", "double")),
    "2010": (("vendor_id", "vendor_name", "string"), ("pickup_datetime", "pickup", "timestamp"),
             ("dropoff_datetime", "dropoff", "timestamp"), ("passenger_count", "passenger_count", "int64"),
             ("trip_distance", "trip_distance", "double"), ("pickup_longitude", "pickup_lon", "double"),
             ("pickup_latitude", "pickup_lat", "double"), ("rate_code", "rate_code", "int64"),
             ("store_and_fwd_flag", "flag_text", "string"), ("dropoff_longitude", "dropoff_lon", "double"),
             ("dropoff_latitude", "dropoff_lat", "double"), ("payment_type", "payment_type", "string"),
             ("fare_amount", "fare_amount", "double"), ("surcharge", "extra", "double"),
             ("mta_tax", "mta_tax", "double"), ("tip_amount", "tip_amount", "double"),
             ("tolls_amount", "tolls_amount", "double"), ("total_amount", "total_amount", "double")),
}


def older_layout(schema: TripSchema, month: str) -> str | None:
    """``"2009"`` or ``"2010"`` for a yellow month the TLC publishes in an older layout, else None."""
    if schema.colour != "yellow" or month >= OLDER_LAYOUTS_UNTIL:
        return None
    return "2009" if month < "2010-01" else "2010"


# Months from which the TLC's layout changed.
TLC_NARROW_TYPES_FROM = "2023-01"  # ids int32 (were int64); passenger_count, RatecodeID int64 (were double)
TLC_AIRPORT_FEE_CAPITALIZED_FROM = "2023-12"  # Airport_fee (was airport_fee)
TLC_CBD_FEE_FROM = "2025-01"  # cbd_congestion_fee appears


def tlc_arrow_schema(schema: TripSchema, month: str):
    """The Arrow schema of the colour's TLC Parquet file for the month: its column names, order
    and physical types as the TLC publishes them (they drift between months)."""
    import pyarrow as pa

    layout = older_layout(schema, month)
    if layout:
        types = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64(), "timestamp": pa.timestamp("us")}
        return pa.schema([pa.field(name, types[kind]) for name, _, kind in OLDER_LAYOUT_COLUMNS[layout]])
    names = list(TLC_COLUMNS[schema.colour])
    if schema.colour == "yellow":
        names.append("Airport_fee" if month >= TLC_AIRPORT_FEE_CAPITALIZED_FROM else "airport_fee")
    if month >= TLC_CBD_FEE_FROM:
        names.append("cbd_congestion_fee")
    narrow = month >= TLC_NARROW_TYPES_FROM

    def arrow_type(name: str):
        if name.endswith("_datetime"):
            return pa.timestamp("us")
        if name in ("VendorID", "PULocationID", "DOLocationID"):
            return pa.int32() if narrow else pa.int64()
        if name in ("passenger_count", "RatecodeID"):
            return pa.int64() if narrow else pa.float64()
        if name == "payment_type":
            return pa.int64() if schema.colour == "yellow" else pa.float64()
        if name == "store_and_fwd_flag":
            return pa.string()
        if name == "ehail_fee":
            return pa.null()
        return pa.float64()  # trip_type, trip_distance and every amount

    return pa.schema([pa.field(name, arrow_type(name)) for name in names])


def parquet_sql(schema: TripSchema, month: str, rows: int, seed: int = 0) -> str:
    """The SELECT of the month's rows as the TLC publishes them (the trips of :func:`month_sql`):
    the TLC's column names, in order, each a typed value near its physical type (the exact type
    is cast per batch, see :func:`tlc_arrow_schema`)."""
    import pyarrow as pa

    _, typed, source = _month_values(schema, month, rows, seed)
    layout = older_layout(schema, month)
    generic = {name: value for name, value, _ in OLDER_LAYOUT_COLUMNS[layout]} if layout else {}
    select = []
    for field in tlc_arrow_schema(schema, month):
        value = typed[generic.get(field.name) or _generic(field.name)]
        if pa.types.is_timestamp(field.type):
            sql_type = "TIMESTAMP"
        elif pa.types.is_integer(field.type):
            sql_type = "INTEGER" if field.type.bit_width == 32 else "BIGINT"
        elif pa.types.is_floating(field.type):
            sql_type = "DOUBLE"
        elif pa.types.is_string(field.type):
            sql_type = "VARCHAR"
        else:
            sql_type = None  # NULL-typed: left as DuckDB's NULL
        select.append(f'{value if sql_type is None else f"CAST({value} AS {sql_type})"} AS "{field.name}"')
    return f"SELECT {', '.join(select)} FROM {source}"


def write_month_parquet(schema: TripSchema, month: str, rows: int, out_dir: Path, seed: int = 0,
                        threads: int | None = None, *, batch_rows: int = PARQUET_BATCH_ROWS) -> Path:
    """Write ``<out_dir>/<colour>_tripdata_<month>.parquet`` (flat, like the TLC's URLs) and
    return its path: the trips :func:`write_month` writes for the same arguments, in the TLC's
    column names and types for the month. Streamed: DuckDB's Arrow batches of ``batch_rows``
    rows, each cast to the TLC's types and written as a row group; written beside the target
    and renamed into place when complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(out_dir) / schema.filename(month, PARQUET)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    arrow_schema = tlc_arrow_schema(schema, month)
    conn = duckdb.connect()  # in memory
    if threads:
        conn.execute(f"SET threads = {int(threads)}")
    try:
        reader = conn.sql(parquet_sql(schema, month, rows, seed)).to_arrow_reader(batch_rows)
        with pq.ParquetWriter(tmp, arrow_schema) as writer:
            for batch in reader:
                columns = [pa.nulls(batch.num_rows, field.type) if pa.types.is_null(field.type)
                           else batch.column(field.name).cast(field.type)
                           for field in arrow_schema]
                writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=arrow_schema),
                                   row_group_size=batch_rows)
        tmp.replace(target)
    finally:
        conn.close()
        tmp.unlink(missing_ok=True)
    return target


def write_sample_source(out_dir: Path, months: list[str], rows: int, colours=("yellow", "green"),
                        seed: int = 0, green_share: float = 1.0, fmt: str = CSV_GZ) -> list[Path]:
    """A local source for each colour and month: the CSV mirror's layout
    (``<out_dir>/<colour>/<colour>_tripdata_YYYY-MM.csv.gz``, ``fmt=".csv.gz"``) or the TLC's
    (``<out_dir>/<colour>_tripdata_YYYY-MM.parquet``, flat, ``fmt=".parquet"``). Yellow files
    have ``rows`` rows, green ones ``max(1, round(rows * green_share))``; each colour its own
    trips."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: use one of {', '.join(FORMATS)}")
    if green_share < 0:
        raise ValueError(f"green_share={green_share!r} must not be negative")
    write = write_month_parquet if fmt == PARQUET else write_month
    return [write(SCHEMAS[c], m, max(1, round(rows * green_share)) if c == "green" else rows,
                  out_dir, seed=seed + i)
            for c in colours for i, m in enumerate(months)]
