"""Put longitude/latitude points into TLC taxi zones, vectorised (no Python loop per point).

The TLC's 2009-2010 yellow trip files carry GPS coordinates (``Start_Lon``/``Start_Lat``,
``pickup_longitude``/``pickup_latitude``, ...: WGS84 degrees) where later files carry a taxi zone
``LocationID``. ``place(lon, lat)`` turns the former into the latter, using the TLC's own zone
shapefile, ``taxi_zones.zip`` beside this module (a byte-identical copy of what the TLC publishes at
``https://d37ci6vzurychx.cloudfront.net/misc/taxi_zones.zip``, read straight from the zip with pyshp).

CRS
    The shapes are in EPSG:2263 (NAD83 / New York Long Island State Plane, US survey feet: the
    zip's ``.prj``). Points are projected lon/lat -> EPSG:2263 with pyproj
    (``Transformer.from_crs("EPSG:4326", "EPSG:2263", always_xy=True)``) and tested there. PROJ's
    network is switched off (``pyproj.network.set_network_enabled(False)``, process-wide, when the
    transformer is first made) and no grid is needed:
    offline, with only the wheel's ``proj.db``, PROJ picks "Inverse of NAD83 to WGS 84 (1)", the
    null datum shift (accuracy 4 m; the better NYHPGN grid shift is not downloaded, which moves a
    point by about a metre: nothing next to a GPS fix of 2009).

Which id a point gets (ids from the lookup ``taxi_zone_lookup.csv`` the dbt seed holds, which lists
265 zones: 1-263 are areas, and both 264 and 265 have borough "Unknown" and service zone "N/A",
264 with zone "NV" and 265 with zone "NA")
    ``UNKNOWN_ZONE`` = 264 ("NV", no valid location): no usable coordinate: NaN or infinite (a
    null converted from Arrow/pandas), either coordinate exactly 0 (the 2009-2010 files' "no GPS
    fix", usually 0/0), or outside the range of WGS84 (``|lon| > 180`` or ``|lat| > 90``).
    ``OUTSIDE_ZONE`` = 265 ("NA", no zone applies; later TLC lookups call 265 "Outside of NYC"):
    a real coordinate that falls in no taxi zone: New Jersey (except zone 1, Newark Airport,
    which is in the shapes), Long Island, the open sea, swapped lon/lat (a point in Antarctica).
    A point exactly on the line between two zones (or in one of the sub-square-foot slivers where
    neighbouring shapes overlap) gets the lowest of their LocationIDs; a point on a zone's outer
    edge is in it.

What the shapefile holds (verified on this copy: 263 records, 240 polygons and 23 multi-part
polygons, all valid, none with a hole as pyshp reads the rings; 302 pairs of neighbours overlap,
all in slivers under 1 sq ft)
    * ``LocationID`` 56 appears twice (records with OBJECTID 56 and 57, both "Corona", touching:
      united here) and 103 three times (OBJECTID 103, 104, 105, "Governor's Island/Ellis
      Island/Liberty Island": three separate islands, united into one multi-polygon).
    * So lookup ids 57, 104 and 105 have no shape (nor have 264 and 265): 260 ids have one
      (``zone_ids()``). Every other record has OBJECTID == LocationID, so 57/104/105 are most
      likely the intended ids of those records (the lookup lists 56 and 57 both as "Corona", and
      103-105 all as the islands); this module keeps the ``LocationID`` column as published, so
      it never returns 57, 104 or 105 (the borough and zone name are the same either way).

How (the grid)
    Built once per process (``functools.lru_cache``; 0.4 s including reading the zip and making
    the transformer): a uniform grid of ``CELL_FEET`` = 100 ft cells over the zones' bounding box
    (1,530 x 1,545 cells, an int32 array of 9 MB, plus 77,000 boundary cells' candidates). Each
    cell is

    * wholly inside one zone -> the cell holds its LocationID (a numpy fancy-index lookup),
    * wholly outside every zone -> it holds ``OUTSIDE_ZONE``,
    * or crossed by a zone boundary -> it holds a negative row number into a small table of
      candidate zones (the zones whose boundary crosses the cell and the zone holding its
      centre, lowest id first; at most 4 here); only points in such cells are tested exactly,
      with ``shapely.intersects_xy`` on the prepared polygons, one vectorised call per candidate
      column, never per point.

    Boundary cells come from the zones' rings segmentized to <= one cell (each segment then
    lies within the 2 x 2 cells around its ends, all of which are marked); the other cells are
    filled by a winding-number scanline over the cell centres (every ring's crossings of each
    row of centres, summed with numpy). A cell no boundary crosses but in two zones at once
    would be tested exactly as well (the TLC's shapes have none). Points far from the city (outside the lon/lat box of the
    grid) are not projected at all. The work goes in chunks of ``CHUNK`` points so memory stays
    bounded whatever the input's length.

    Measured (``python -m benchmarks.zone_placement --rows 14000000``, one thread of the 2-core
    development machine): 14 M pickups and 14 M dropoffs (90 % over the city's bounding box, the
    rest 0/0, NaN or anywhere on Earth) placed in 4.1 s: 3.4 M trips/s, 6.8 M points/s, peak RSS
    740 MB of which 427 MB are the four input arrays (placing adds about 160 MB: the two int32
    results and one chunk's temporaries). About 60 % of the time is the projection. Points in
    Manhattan (11 % in boundary cells) go at 5.5 M/s; the worst case, every point within 30 ft of
    a zone boundary, at 1.7 M/s. Checked point for point against shapely on the whole polygons.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyproj
import shapefile  # pyshp
import shapely
import shapely.geometry
from pyproj.enums import TransformDirection

ZONES_ZIP = Path(__file__).with_name("taxi_zones.zip")

UNKNOWN_ZONE = 264  # lookup: "Unknown", "NV": no usable coordinate
OUTSIDE_ZONE = 265  # lookup: "Unknown", "NA" (later lookups: "Outside of NYC"): a real point in no zone

CELL_FEET = 100.0  # grid cell size in EPSG:2263 units (US survey feet)
CHUNK = 1 << 20  # points placed at a time
_MARGIN_DEGREES = 0.01  # widening of the lon/lat box outside which nothing is projected


@dataclass(frozen=True)
class PlacementCounts:
    rows: int
    placed: int  # in a taxi zone
    unknown: int  # UNKNOWN_ZONE: no usable coordinate
    outside: int  # OUTSIDE_ZONE: a real coordinate in no zone


def counts(ids: np.ndarray) -> PlacementCounts:
    """How many of ``place``'s ids are zones, unknown and outside."""
    ids = np.asarray(ids)
    unknown = int(np.count_nonzero(ids == UNKNOWN_ZONE))
    outside = int(np.count_nonzero(ids == OUTSIDE_ZONE))
    return PlacementCounts(rows=int(ids.size), placed=int(ids.size) - unknown - outside,
                           unknown=unknown, outside=outside)


@dataclass(frozen=True)
class _Zones:
    ids: np.ndarray  # int32, ascending
    polygons: np.ndarray  # shapely geometries (EPSG:2263), prepared, same order as ids


@dataclass(frozen=True)
class _Grid:
    x0: float
    y0: float
    size: float
    cells: np.ndarray  # int32 (rows, cols): a LocationID, OUTSIDE_ZONE, or -(1 + row of candidates)
    candidates: np.ndarray  # int32 (boundary cells, K): indexes into _Zones, ascending, -1 = none
    lon_lat_box: tuple[float, float, float, float]  # nothing outside it can fall in the grid


@functools.lru_cache(maxsize=1)
def _transformer() -> pyproj.Transformer:
    pyproj.network.set_network_enabled(False)
    with warnings.catch_warnings():
        # "Best transformation is not available due to missing Grid(us_noaa_nyhpgn.tif)": by design
        warnings.simplefilter("ignore", UserWarning)
        return pyproj.Transformer.from_crs("EPSG:4326", "EPSG:2263", always_xy=True)


@functools.lru_cache(maxsize=1)
def _zones() -> _Zones:
    parts: dict[int, list] = {}
    with shapefile.Reader(str(ZONES_ZIP)) as reader:
        for shape_record in reader.iterShapeRecords():
            geometry = shapely.geometry.shape(shape_record.shape.__geo_interface__)
            parts.setdefault(int(shape_record.record["LocationID"]), []).append(geometry)
    ids = np.array(sorted(parts), dtype=np.int32)
    polygons = np.array([shapely.union_all(parts[i]) if len(parts[i]) > 1 else parts[i][0] for i in ids],
                        dtype=object)
    polygons = shapely.orient_polygons(polygons)  # exteriors counter-clockwise: the winding below
    shapely.prepare(polygons)
    return _Zones(ids=ids, polygons=polygons)


def zone_ids() -> list[int]:
    """The LocationIDs the shapefile has shapes for (260 of them: not 57, 104, 105, 264, 265)."""
    return _zones().ids.tolist()


def point_inside(location_id: int) -> tuple[float, float]:
    """(lon, lat) of a point surely inside zone ``location_id``: the point on surface of its
    largest part, projected back to WGS84."""
    zones = _zones()
    where = np.flatnonzero(zones.ids == location_id)
    if not where.size:
        raise KeyError(f"no taxi zone shape has LocationID {location_id}")
    parts = shapely.get_parts(zones.polygons[where[0]])
    point = shapely.point_on_surface(parts[np.argmax(shapely.area(parts))])
    lon, lat = _transformer().transform(point.x, point.y, direction=TransformDirection.INVERSE)
    return float(lon), float(lat)


def _ring_edges(polygons: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Every ring edge of every zone, segmentized to <= size: (xa, ya, xb, yb) rows, zone index."""
    parts, part_zone = shapely.get_parts(polygons, return_index=True)
    rings, ring_part = shapely.get_rings(shapely.segmentize(parts, size), return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring[1:] == ring[:-1]
    edges = np.hstack([coords[:-1], coords[1:]])[same_ring]
    return edges, part_zone[ring_part[ring[:-1][same_ring]]]


@functools.lru_cache(maxsize=1)
def _grid(size: float = CELL_FEET) -> _Grid:
    zones = _zones()
    xmin, ymin, xmax, ymax = shapely.total_bounds(zones.polygons)
    x0, y0 = xmin - size, ymin - size
    cols, rows = int((xmax - x0) // size) + 2, int((ymax - y0) // size) + 2
    edges, zone = _ring_edges(zones.polygons, size)
    xa, ya, xb, yb = edges.T

    # Boundary cells: a segment no longer than a cell lies in the (at most 2 x 2) cells spanned by its ends.
    ia, ja = ((xa - x0) // size).astype(np.int64), ((ya - y0) // size).astype(np.int64)
    ib, jb = ((xb - x0) // size).astype(np.int64), ((yb - y0) // size).astype(np.int64)
    n_zones = len(zones.ids)
    marks = np.concatenate([(j * cols + i) * n_zones + zone for i, j in ((ia, ja), (ib, jb), (ia, jb), (ib, ja))])

    # Other cells: winding number at the cell centres (exteriors counter-clockwise: +1 inside).
    rising = yb > ya
    lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
    first = np.ceil((lo - y0) / size - 0.5).astype(np.int64)
    crossings = np.maximum(np.ceil((hi - y0) / size - 0.5).astype(np.int64) - first, 0)
    edge = np.repeat(np.arange(len(xa)), crossings)
    row = first[edge] + (np.arange(edge.size) - np.repeat(np.cumsum(crossings) - crossings, crossings))
    yc = y0 + (row + 0.5) * size
    xc = xa[edge] + (yc - ya[edge]) * (xb[edge] - xa[edge]) / (yb[edge] - ya[edge])
    col = np.clip(np.floor((xc - x0) / size - 0.5).astype(np.int64) + 1, 0, cols)  # first centre right of it
    sign = np.where(rising[edge], -1, 1)
    flat = row * (cols + 1) + col
    inside = np.cumsum(np.bincount(flat, sign, rows * (cols + 1)).reshape(rows, cols + 1), axis=1)[:, :cols]
    id_sum = np.cumsum(np.bincount(flat, sign * zones.ids[zone[edge]], rows * (cols + 1))
                       .reshape(rows, cols + 1), axis=1)[:, :cols]
    inside, id_sum = np.rint(inside).astype(np.int64), np.rint(id_sum).astype(np.int32)
    cells = np.where(inside == 1, id_sum, OUTSIDE_ZONE).astype(np.int32)

    # A cell no boundary crosses but in two zones at once (none in the TLC's shapes): test exactly too.
    odd = np.flatnonzero((inside.ravel() != 0) & (inside.ravel() != 1))
    if odd.size:
        oj, oi = np.divmod(odd, cols)
        boxes = shapely.box(x0 + oi * size, y0 + oj * size, x0 + (oi + 1) * size, y0 + (oj + 1) * size)
        which, zone_index = shapely.STRtree(zones.polygons).query(boxes, predicate="intersects")
        marks = np.concatenate([marks, odd[which] * n_zones + zone_index])

    # A marked cell may be one the segment misses (the fourth of the 2 x 2), wholly in another zone: the
    # zone at its centre is a candidate too.
    marked = np.unique(marks // n_zones)
    in_one = marked[inside.ravel()[marked] == 1]
    zone_index = np.searchsorted(zones.ids, id_sum.ravel()[in_one])
    known = (zone_index < n_zones) & (zones.ids[np.minimum(zone_index, n_zones - 1)] == id_sum.ravel()[in_one])
    marks = np.concatenate([marks, in_one[known] * n_zones + zone_index[known]])

    marks = np.unique(marks)  # sorted by cell, then zone index (= ascending LocationID)
    cell, zone_index = np.divmod(marks, n_zones)
    boundary, start, per_cell = np.unique(cell, return_index=True, return_counts=True)
    candidates = np.full((boundary.size, int(per_cell.max())), -1, dtype=np.int32)
    candidates[np.repeat(np.arange(boundary.size), per_cell), np.arange(cell.size) - np.repeat(start, per_cell)] = (
        zone_index)
    cells.ravel()[boundary] = -1 - np.arange(boundary.size, dtype=np.int32)

    # The lon/lat box of the grid's rectangle (its densified outline projected back, widened).
    t = np.linspace(0.0, 1.0, 101)
    x1, y1 = x0 + cols * size, y0 + rows * size
    outline_x = np.concatenate([x0 + t * (x1 - x0), np.full_like(t, x1), x1 - t * (x1 - x0), np.full_like(t, x0)])
    outline_y = np.concatenate([np.full_like(t, y0), y0 + t * (y1 - y0), np.full_like(t, y1), y1 - t * (y1 - y0)])
    lon, lat = _transformer().transform(outline_x, outline_y, direction=TransformDirection.INVERSE)
    box = (lon.min() - _MARGIN_DEGREES, lat.min() - _MARGIN_DEGREES,
           lon.max() + _MARGIN_DEGREES, lat.max() + _MARGIN_DEGREES)
    return _Grid(x0=x0, y0=y0, size=size, cells=cells, candidates=candidates, lon_lat_box=box)


def _place_projected(x: np.ndarray, y: np.ndarray, grid: _Grid, zones: _Zones) -> np.ndarray:
    """LocationIDs of EPSG:2263 points (finite), OUTSIDE_ZONE for those in no zone."""
    rows, cols = grid.cells.shape
    i = np.floor((x - grid.x0) / grid.size)
    j = np.floor((y - grid.y0) / grid.size)
    in_grid = (i >= 0) & (i < cols) & (j >= 0) & (j < rows)
    out = np.full(x.size, OUTSIDE_ZONE, dtype=np.int32)
    where = np.flatnonzero(in_grid)
    code = grid.cells[j[where].astype(np.intp), i[where].astype(np.intp)]
    out[where] = code
    boundary = code < 0
    todo = where[boundary]
    out[todo] = OUTSIDE_ZONE
    candidates = grid.candidates[-1 - code[boundary]]
    for k in range(candidates.shape[1]):
        zone = candidates[:, k]
        keep = zone >= 0
        todo, zone, candidates = todo[keep], zone[keep], candidates[keep]
        if not todo.size:
            break
        hit = shapely.intersects_xy(zones.polygons[zone], x[todo], y[todo])
        out[todo[hit]] = zones.ids[zone[hit]]
        miss = ~hit
        todo, candidates = todo[miss], candidates[miss]
    return out


def _place_chunk(lon: np.ndarray, lat: np.ndarray, grid: _Grid, zones: _Zones) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        unknown = ~(np.isfinite(lon) & np.isfinite(lat)) | (lon == 0) | (lat == 0) | (np.abs(lon) > 180) | (
            np.abs(lat) > 90)
        west, south, east, north = grid.lon_lat_box
        near = np.flatnonzero((lon >= west) & (lon <= east) & (lat >= south) & (lat <= north) & ~unknown)
    out = np.full(lon.size, OUTSIDE_ZONE, dtype=np.int32)
    out[unknown] = UNKNOWN_ZONE
    if near.size:
        x, y = lon[near], lat[near]  # copies: projected in place
        _transformer().transform(x, y, inplace=True)
        out[near] = _place_projected(x, y, grid, zones)
    return out


def place(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The taxi zone LocationID (int32) of each (lon, lat) point in WGS84 degrees; ``UNKNOWN_ZONE``
    where there is no usable coordinate, ``OUTSIDE_ZONE`` where it is in no zone. Same shape as
    the input; NaN (a null) is unknown; the inputs are not modified."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    if lon.shape != lat.shape:
        raise ValueError(f"lon and lat differ in shape: {lon.shape} and {lat.shape}")
    grid, zones = _grid(), _zones()
    flat_lon, flat_lat = lon.ravel(), lat.ravel()
    out = np.empty(flat_lon.size, dtype=np.int32)
    for start in range(0, flat_lon.size, CHUNK):
        stop = start + CHUNK
        out[start:stop] = _place_chunk(flat_lon[start:stop], flat_lat[start:stop], grid, zones)
    return out.reshape(lon.shape)
