"""How fast taxi_platform/sources/zones.py puts trips into taxi zones, and how much memory it takes.

``python -m benchmarks.zone_placement --rows 14000000`` (about a 2009 yellow month: 14,092,413
trips) draws ``rows`` seeded random pickups and as many dropoffs, like the 2009-2010 files'
coordinates: 90 % uniform over the taxi zones' lon/lat bounding box (about half of that box is
in a zone, the rest water, New Jersey and Long Island), 5 % 0/0 (no GPS fix), 4 % anywhere on
Earth, 1 % NaN (a null), then places both with ``zones.place`` and prints one JSON line:

``rows``, ``seconds`` (placing pickups and dropoffs, the zone grid already built),
``rows_per_second`` (trips: two points each), ``points_per_second``, ``peak_rss_mb`` (the process's
peak resident set, ``ru_maxrss``: the input arrays, 4 x 8 bytes a trip, are in it),
``input_mb``, ``grid_build_seconds`` (reading the shapefile and building the grid, once per
process) and the pickups' placement counts. ``measure(rows)`` returns the same dict.

Measured on the 2-core development machine, 14,000,000 rows: see the module docstring of
taxi_platform/sources/zones.py.

``make bench`` (benchmarks/run.py) runs two measured children from here (``WORKERS``, the same
protocol as benchmarks/workers.py's: a params dict in, a result dict with ``seconds`` out):
``zone_placement`` (:func:`measure` in a child of its own) and ``older_layout_month``
(``layouts.contract_layout_of`` on a whole month in the 2009 yellow layout: DuckDB's mapping,
both coordinates placed in zones, the temporary Parquet copy written). Like workers.py, this
module imports nothing from ``benchmarks``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import psutil

from taxi_platform.sources import zones

# The taxi zones' extent (EPSG:2263 bounds projected back to WGS84, rounded outwards).
CITY = (-74.26, 40.49, -73.69, 40.92)  # west, south, east, north
SEED = 2009


def _points(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    west, south, east, north = CITY
    lon, lat = rng.uniform(west, east, rows), rng.uniform(south, north, rows)
    kind = rng.integers(0, 100, rows, dtype=np.int8)
    zero = kind >= 95
    lon[zero], lat[zero] = 0.0, 0.0
    far = (kind >= 91) & (kind < 95)
    lon[far], lat[far] = rng.uniform(-180, 180, int(far.sum())), rng.uniform(-90, 90, int(far.sum()))
    null = kind == 90
    lon[null], lat[null] = np.nan, np.nan
    return lon, lat


def measure(rows: int) -> dict:
    started = time.perf_counter()
    zones.place(np.array([-73.9855]), np.array([40.7580]))  # builds the zone grid (cached per process)
    grid_build = time.perf_counter() - started

    rng = np.random.default_rng(SEED)
    pickup_lon, pickup_lat = _points(rng, rows)
    dropoff_lon, dropoff_lat = _points(rng, rows)
    input_mb = sum(a.nbytes for a in (pickup_lon, pickup_lat, dropoff_lon, dropoff_lat)) / 2**20
    rss_before = psutil.Process().memory_info().rss / 2**20

    started = time.perf_counter()
    pickup = zones.place(pickup_lon, pickup_lat)
    dropoff = zones.place(dropoff_lon, dropoff_lat)
    seconds = time.perf_counter() - started

    assert pickup.shape == dropoff.shape == (rows,)
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds),
        "points_per_second": round(2 * rows / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # KiB on Linux
        "rss_before_placing_mb": round(rss_before, 1),
        "input_mb": round(input_mb, 1),
        "grid_build_seconds": round(grid_build, 3),
        "pickups": asdict(zones.counts(pickup)),
    }


# -- the measured children of `make bench` (benchmarks/run.py) ---------------------------------

def placement_worker(p: dict) -> dict:
    """``zone_placement``: :func:`measure` on ``p["rows"]`` trips (``seconds``: placing only)."""
    out = measure(int(p["rows"]))
    return {**out, "rows_in": out["rows"]}


def older_layout_month_worker(p: dict) -> dict:
    """``older_layout_month``: ``contract_layout_of`` on the older-layout file ``p["path"]``, as
    bronze calls it before landing such a month (taxi_platform/warehouse/port.py). The clock runs
    from the call to the copy being ready (DuckDB's pass in batches, the zones placed, the copy
    written, the report's counts); the imports are made before it, the zone grid is built inside
    it (once per process, as in a run); removing the temporary copy is outside it."""
    import duckdb  # noqa: F401  (imported ahead: the clock measures the work, not the imports)
    import pyarrow.parquet as pq

    from taxi_platform.schemas import YELLOW
    from taxi_platform.sources import layouts

    path = Path(p["path"])
    rows_in = pq.ParquetFile(path).metadata.num_rows
    started = time.perf_counter()
    with layouts.contract_layout_of(path, YELLOW, filename=path.name, partition=p["month"]) as (out, mapped):
        seconds = time.perf_counter() - started
        copy_bytes = out.stat().st_size
        if mapped is None:
            raise ValueError(f"{path.name} is not in an older yellow layout: nothing was mapped")
        report = mapped.report
    return {"seconds": round(seconds, 3), "rows_in": rows_in, "rows_out": report.rows,
            "rows_per_second": round(report.rows / seconds), "layout": report.layout,
            "copy_bytes": copy_bytes, "share_of_pickups_placed": round(report.share_placed, 4),
            "report": asdict(report),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


WORKERS = {"zone_placement": placement_worker, "older_layout_month": older_layout_month_worker}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zone_placement", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=14_000_000, help="trips to place (default: 14,000,000)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.rows)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
