"""Longitude/latitude -> TLC taxi zone (taxi_platform/sources/zones.py): real landmarks land in the
zones the lookup names, unusable and far-away points get the lookup's unknown ids, every zone's own
inside point comes back to it, and the grid agrees with a plain shapely test point by point."""

import csv
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyproj
import pytest
import shapefile
import shapely

from taxi_platform.sources import zones
from taxi_platform.sources.zones import OUTSIDE_ZONE, UNKNOWN_ZONE, PlacementCounts, counts, place

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lookup(tlc_dir) -> dict[int, tuple[str, str]]:
    """LocationID -> (borough, zone) from the TLC's lookup (the dbt seed's copy)."""
    with open(tlc_dir / "taxi_zone_lookup.csv", newline="") as f:
        return {int(row["LocationID"]): (row["Borough"], row["Zone"]) for row in csv.DictReader(f)}


def _to_state_plane(lon, lat):
    return pyproj.Transformer.from_crs("EPSG:4326", "EPSG:2263", always_xy=True).transform(lon, lat)


def _brute_force(x, y):
    """The lowest LocationID among the zones containing each EPSG:2263 point, OUTSIDE_ZONE if none:
    shapely on the whole polygons, no grid."""
    ids, polygons = np.array(zones.zone_ids()), zones._zones().polygons
    expected = np.full(len(x), OUTSIDE_ZONE, dtype=np.int32)
    for i in np.argsort(ids)[::-1]:  # the lowest id written last
        expected[shapely.intersects_xy(polygons[i], x, y)] = ids[i]
    return expected


def test_the_zip_is_the_tlcs_file_byte_for_byte(tlc_dir):
    assert (ROOT / "taxi_platform/sources/taxi_zones.zip").read_bytes() == (tlc_dir / "taxi_zones.zip").read_bytes()
    assert {"taxi_zones.shp", "taxi_zones.dbf", "taxi_zones.shx", "taxi_zones.prj"} <= set(
        zipfile.ZipFile(zones.ZONES_ZIP).namelist())


@pytest.mark.parametrize(("lon", "lat", "location_id", "zone"), [
    (-73.9855, 40.7580, 230, "Times Sq/Theatre District"),
    (-73.7781, 40.6413, 132, "JFK Airport"),
    (-73.8740, 40.7769, 138, "LaGuardia Airport"),
    (-73.9654, 40.7829, 43, "Central Park"),
    (-74.0445, 40.6892, 103, "Governor's Island/Ellis Island/Liberty Island"),  # the Statue of Liberty
    (-74.1745, 40.6895, 1, "Newark Airport"),  # in New Jersey, yet a taxi zone
])
def test_a_point_inside_a_known_zone_is_placed_in_it(lookup, lon, lat, location_id, zone):
    assert lookup[location_id][1] == zone
    assert place(np.array([lon]), np.array([lat])).tolist() == [location_id]


def test_the_unknown_and_outside_ids_are_the_lookups_nv_and_na_zones(lookup):
    assert (UNKNOWN_ZONE, OUTSIDE_ZONE) == (264, 265)
    assert lookup[UNKNOWN_ZONE] == ("Unknown", "NV") and lookup[OUTSIDE_ZONE] == ("Unknown", "NA")


def test_a_point_with_no_usable_coordinate_is_unknown():
    nan, inf = float("nan"), float("inf")
    lon = np.array([0.0, nan, -73.9855, nan, 0.0, -73.9855, inf, -200.0, -73.9855])
    lat = np.array([0.0, 40.7580, nan, nan, 40.7580, 0.0, 40.7580, 40.7580, 95.0])
    assert place(lon, lat).tolist() == [UNKNOWN_ZONE] * len(lon)


@pytest.mark.parametrize(("lon", "lat"), [
    (40.7580, -73.9855),  # Times Square with latitude and longitude swapped: Antarctica
    (-74.0776, 40.7282),  # Jersey City
    (-75.1652, 39.9526),  # Philadelphia
    (-73.6407, 40.7265),  # Garden City, Long Island (Nassau County)
    (-73.9000, 40.4000),  # the Atlantic, south of the Rockaways
    (-0.1276, 51.5072),  # London
])
def test_a_real_point_in_no_zone_is_outside(lon, lat):
    assert place(np.array([lon]), np.array([lat])).tolist() == [OUTSIDE_ZONE]


def test_the_shapefile_repeats_56_and_103_and_has_no_shape_for_57_104_105(lookup):
    with shapefile.Reader(str(zones.ZONES_ZIP)) as reader:
        records = [(r["OBJECTID"], r["LocationID"]) for r in reader.records()]
    assert len(records) == 263
    assert [objectid for objectid, location in records if objectid != location] == [57, 104, 105]
    assert sorted(location for _, location in records if location in (56, 103)) == [56, 56, 103, 103, 103]
    assert zones.zone_ids() == sorted({location for _, location in records})
    assert sorted(set(lookup) - set(zones.zone_ids())) == [57, 104, 105, UNKNOWN_ZONE, OUTSIDE_ZONE]
    assert lookup[56] == lookup[57] and lookup[103] == lookup[104] == lookup[105]


def test_every_zone_gets_back_its_own_inside_point():
    ids = zones.zone_ids()
    points = np.array([zones.point_inside(location_id) for location_id in ids])
    assert place(points[:, 0], points[:, 1]).tolist() == ids
    assert all(place(*zones.point_inside(location_id)) == location_id for location_id in ids[:5])


def test_a_zone_without_a_shape_has_no_inside_point():
    with pytest.raises(KeyError):
        zones.point_inside(57)


def test_the_grid_agrees_with_shapely_on_the_whole_polygons():
    # 200,000 points over the grid's lon/lat box, and 50,000 within a few feet of a zone boundary.
    rng = np.random.default_rng(2263)
    west, south, east, north = zones._grid().lon_lat_box
    lon, lat = rng.uniform(west, east, 200_000), rng.uniform(south, north, 200_000)
    boundaries = shapely.boundary(zones._zones().polygons)
    on_edge = shapely.line_interpolate_point(boundaries[rng.integers(0, len(boundaries), 50_000)],
                                             rng.uniform(0, 1, 50_000), normalized=True)
    edge_x, edge_y = shapely.get_coordinates(on_edge).T + rng.uniform(-5, 5, (2, 50_000))
    edge_lon, edge_lat = pyproj.Transformer.from_crs("EPSG:2263", "EPSG:4326", always_xy=True).transform(
        edge_x, edge_y)
    lon, lat = np.concatenate([lon, edge_lon]), np.concatenate([lat, edge_lat])

    got = place(lon, lat)
    expected = _brute_force(*_to_state_plane(lon, lat))
    assert np.array_equal(got, expected), np.flatnonzero(got != expected)[:20]
    assert len(set(got.tolist())) > 250  # nearly every zone was hit


def test_a_point_on_the_line_between_two_zones_gets_the_lower_id():
    # The vertices Times Square (230) shares with Midtown Center (161): on both zones' edges.
    polygons, ids = zones._zones().polygons, np.array(zones.zone_ids())
    shared = {tuple(xy) for xy in shapely.get_coordinates(polygons[ids == 230][0])} & {
        tuple(xy) for xy in shapely.get_coordinates(polygons[ids == 161][0])}
    x, y = np.array(sorted(shared)).T
    assert len(x) > 3 and shapely.intersects_xy(polygons[ids == 230][0], x, y).all()
    placed = zones._place_projected(x, y, zones._grid(), zones._zones())
    assert placed.tolist() == _brute_force(x, y).tolist()
    assert set(placed.tolist()) <= {100, 161} and 161 in placed  # one of them is also Garment District's (100)


def test_the_grid_handles_holes_islands_and_overlapping_zones(monkeypatch):
    # Made-up zones (EPSG:2263 feet): 1 and 2 overlap in a square of many cells, 3 has a hole
    # holding the island 4, and 5 is a thin sliver (narrower than a cell) across 3.
    polygons = np.array([shapely.box(0, 0, 1000, 1000), shapely.box(500, 500, 1500, 1500),
                         shapely.Polygon(shapely.box(2000, 0, 3000, 1000).exterior.coords,
                                         [shapely.box(2300, 300, 2700, 700).exterior.coords]),
                         shapely.box(2400, 400, 2600, 600), shapely.box(1990, 810, 3010, 815)], dtype=object)
    polygons = shapely.orient_polygons(polygons)
    shapely.prepare(polygons)
    made_up = zones._Zones(ids=np.array([1, 2, 3, 4, 5], dtype=np.int32), polygons=polygons)
    monkeypatch.setattr(zones, "_zones", lambda: made_up)
    grid = zones._grid.__wrapped__(30.0)
    assert grid.cells[int((750 - grid.y0) // 30), int((750 - grid.x0) // 30)] < 0  # in both: tested exactly
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-100, 3100, 100_000), rng.uniform(-100, 1600, 100_000)
    placed = zones._place_projected(x, y, grid, made_up)
    assert np.array_equal(placed, _brute_force(x, y))
    assert set(placed.tolist()) == {1, 2, 3, 4, 5, OUTSIDE_ZONE}
    assert placed[(x > 2310) & (x < 2390) & (y > 310) & (y < 390)].tolist()[:1] == [OUTSIDE_ZONE]  # the hole


def test_chunks_and_input_shapes_change_nothing(monkeypatch):
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(-74.1, -73.7, 10_001), rng.uniform(40.55, 40.9, 10_001)
    whole = place(lon, lat)
    monkeypatch.setattr(zones, "CHUNK", 999)
    assert np.array_equal(place(lon, lat), whole)
    assert np.array_equal(place(lon[:10_000].reshape(100, 100), lat[:10_000].reshape(100, 100)),
                          whole[:10_000].reshape(100, 100))
    assert place(np.array([]), np.array([])).dtype == np.int32
    with pytest.raises(ValueError):
        place(lon, lat[:-1])


def test_place_takes_arrow_columns_with_nulls_and_leaves_its_input_alone():
    lon = pa.chunked_array([[-73.9855, None, 0.0], [-73.7781]])
    lat = pa.chunked_array([[40.7580, 40.7580, 0.0], [40.6413]])
    lon_np, lat_np = lon.to_numpy(), lat.to_numpy()
    before = lon_np.copy()
    placed = place(lon_np, lat_np)
    assert placed.dtype == np.int32 and placed.tolist() == [230, UNKNOWN_ZONE, UNKNOWN_ZONE, 132]
    assert np.array_equal(lon_np, before, equal_nan=True)
    readonly = np.array([-73.9855, -73.7781]), np.array([40.7580, 40.6413])
    for array in readonly:
        array.setflags(write=False)
    assert place(*readonly).tolist() == [230, 132]
    assert place(np.array([-73.9855], dtype=np.float32), np.array([40.7580], dtype=np.float32)).tolist() == [230]


def test_counts_add_up():
    ids = place(np.array([-73.9855, 0.0, float("nan"), -75.1652, -73.7781]),
                np.array([40.7580, 0.0, 40.0, 39.9526, 40.6413]))
    found = counts(ids)
    assert found == PlacementCounts(rows=5, placed=2, unknown=2, outside=1)
    assert found.placed + found.unknown + found.outside == found.rows


def test_projection_works_offline_with_the_wheels_own_database():
    place(np.array([-73.9855]), np.array([40.7580]))
    assert not pyproj.network.is_network_enabled()
    assert (Path(pyproj.datadir.get_data_dir()) / "proj.db").is_file()
    assert "NAD83 to WGS 84 (1)" in zones._transformer().description  # the null shift: no grid file
