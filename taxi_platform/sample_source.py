"""Deterministic synthetic months in each colour's exact published layout.

Written by DuckDB straight from SQL (no Python loop over rows), so a 7-million-row month
takes seconds. Each file has the real header and column order, CRLF line endings, empty
fields where the real files have them, and the real files' quirks in small doses:

- exact duplicate rows (the same trip twice: silver collapses them);
- pickups from earlier months (stray rows silver keeps, in their own pickup month);
- voided trips: a twin row with negated amounts (a different unique_row_id);
- rows with empty VendorID, passenger_count, RatecodeID and payment_type;
- distances written like the mirror (``.86``, ``.00``), amounts like ``7``, ``4.5``.

Randomness is DuckDB's hash of the row number: with the pinned DuckDB, the same arguments
give the same bytes on every machine.
"""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
import subprocess
from pathlib import Path

import duckdb

from taxi_platform.partitions import month_bounds
from taxi_platform.schemas import SCHEMAS, TripSchema

# Shares of rows with each quirk, in parts per 10,000.
DUPLICATE_PER_10K = 5
STRAY_PER_10K = 10
VOIDED_PER_10K = 10
EMPTY_FIELDS_PER_10K = 50


def _lcg(expr: str, salt: int) -> str:
    """A pseudo-random non-negative integer from an integer SQL expression and a salt
    (DuckDB's hash: stable for the pinned DuckDB version on every machine)."""
    return f"hash(({expr}) * 64 + {salt})"


def _num(expr: str) -> str:
    """An amount with two decimals (cheap to write, unlike printf)."""
    return f"CAST(({expr}) AS DECIMAL(9, 2))::VARCHAR"


def _distance(expr: str) -> str:
    """A distance written like the mirror: two decimals, no leading zero below one (.86, .00)."""
    text = f"CAST(({expr}) AS DECIMAL(9, 2))::VARCHAR"
    return f"CASE WHEN ({expr}) < 1 THEN substr({text}, 2) ELSE {text} END"


def month_sql(schema: TripSchema, month: str, rows: int, seed: int = 0) -> str:
    start, end = month_bounds(month)
    seconds = int((end - start).total_seconds())
    epoch = int(start.replace(tzinfo=dt.UTC).timestamp())
    base = f"(i + {seed * 7919})"
    # j: the row whose content this row carries (a duplicate copies its predecessor).
    dup = f"({_lcg(base, 1)} % 10000 < {DUPLICATE_PER_10K} AND i > 0)"
    j = f"(CASE WHEN {dup} THEN i - 1 ELSE i END + {seed * 7919})"
    r = {k: _lcg(j, salt) for k, salt in
         dict(pu=3, dur=5, pax=7, dist=11, loc1=13, loc2=17, pay=19, tip=23, flag=29,
              stray=31, void=37, empty=41, vendor=43, trip_type=47, extra=53).items()}
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
    vals = {
        "VendorID": f"CASE WHEN {empty} THEN NULL ELSE (1 + {r['vendor']} % 2)::VARCHAR END",
        "pickup": "make_timestamp(CAST(p.pickup_epoch AS BIGINT) * 1000000)::VARCHAR",
        "dropoff": f"make_timestamp(CAST(p.pickup_epoch + 60 + {r['dur']} % 3600 AS BIGINT) * 1000000)::VARCHAR",
        "passenger_count": f"CASE WHEN {empty} THEN NULL ELSE (1 + {r['pax']} % 6)::VARCHAR END",
        "trip_distance": _distance(distance),
        "RatecodeID": f"CASE WHEN {empty} THEN NULL ELSE '1' END",
        "store_and_fwd_flag": f"CASE WHEN {r['flag']} % 100 = 0 THEN 'Y' ELSE 'N' END",
        "PULocationID": f"(1 + {r['loc1']} % 265)::VARCHAR",
        "DOLocationID": f"(1 + {r['loc2']} % 265)::VARCHAR",
        "payment_type": f"CASE WHEN {empty} THEN NULL ELSE (1 + {r['pay']} % 2)::VARCHAR END",
        "fare_amount": _num(f"{sign} * {fare}"),
        "extra": _num(f"{sign} * ({r['extra']} % 3) * 0.5"),
        "mta_tax": _num(f"{sign} * 0.5"),
        "tip_amount": _num(f"{sign} * {tip}"),
        "tolls_amount": "'0'",
        "ehail_fee": "NULL",
        "improvement_surcharge": _num(f"{sign} * 0.3"),
        "total_amount": _num(f"{sign} * ({fare} + ({r['extra']} % 3) * 0.5 + 0.8 + {tip}"
                             + (" + 2.5" if late_2019 else "") + ")"),
        "trip_type": f"CASE WHEN {empty} THEN NULL ELSE (1 + {r['trip_type']} % 2)::VARCHAR END",
        "congestion_surcharge": f"'{congestion}'" if congestion else "NULL",
    }
    select = []
    for name in schema.header:
        generic = ("pickup" if name.endswith("pickup_datetime")
                   else "dropoff" if name.endswith("dropoff_datetime") else name)
        select.append(f'{vals[generic]} AS "{name}"')
    return (f"SELECT {', '.join(select)} FROM "
            f"(SELECT i, {pickup_epoch} AS pickup_epoch FROM range({rows}) t(i)) p")


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


def write_sample_source(out_dir: Path, months: list[str], rows: int, colours=("yellow", "green"),
                        seed: int = 0) -> list[Path]:
    """A local mirror: ``<out_dir>/<colour>/<colour>_tripdata_YYYY-MM.csv.gz`` for each month."""
    return [write_month(SCHEMAS[c], m, rows, out_dir, seed=seed + i)
            for c in colours for i, m in enumerate(months)]
