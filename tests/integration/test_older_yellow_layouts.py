"""Yellow 2009 and 2010 in the TLC's older layouts (vendor names, payment words, coordinates instead
of zones): bronze keeps each layout as published, silver maps both onto the one yellow contract,
the coordinates are placed in their taxi zones, the ids are stable from one load to the next, and
the same months give the same rows on DuckDB, PostgreSQL (oldest and newest) and the BigQuery
emulator; raw -> marts through Dagster, with every check, puts their revenue in their zones on all
three."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from taxi_platform.resources import build_lake, build_warehouse, resources_from_env
from taxi_platform.sample_source import write_month_parquet
from taxi_platform.schemas import PARQUET, YELLOW
from taxi_platform.settings import Settings
from taxi_platform.sources import zones
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from taxi_platform.warehouse.postgres import PostgresWarehouseResource
from tests.support.backends import silver_ids, silver_rows
from tests.support.fixtures import serve_directory
from tests.support.runs import failure_messages

MONTHS = {"2009-01": "2009", "2010-03": "2010"}  # a month of each older layout
ROWS = 3_000
ZONE_LOOKUP = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "taxi_zone_lookup.csv"


@pytest.fixture(scope="module")
def older_months(tmp_path_factory) -> Path:
    """The sample source's 2009-01 (2009 layout) and 2010-03 (2010 layout), TLC file names."""
    root = tmp_path_factory.mktemp("older")
    for i, month in enumerate(MONTHS):
        write_month_parquet(YELLOW, month, ROWS, root, seed=i)
    return root


def _load(warehouse, root: Path, month: str):
    name = YELLOW.filename(month, PARQUET)
    bronze = warehouse.load_bronze(YELLOW, month, name, str(root / name))
    return bronze, warehouse.build_silver(YELLOW, month, name)


def _expected_zones(conn: duckdb.DuckDBPyConnection) -> None:
    """Table ``known(lon, lat, zone)``: every point the sample source draws inside a zone."""
    conn.execute("CREATE TABLE known (lon DOUBLE, lat DOUBLE, zone INTEGER)")
    conn.executemany("INSERT INTO known VALUES (?, ?, ?)",
                     [(round(lon, 6), round(lat, 6), i) for i in zones.zone_ids()
                      for lon, lat in [zones.point_inside(i)]])


def test_a_2009_and_a_2010_month_map_onto_the_yellow_contract_with_their_points_in_their_zones(
        older_months, tmp_path):
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    for month, layout in MONTHS.items():
        bronze, silver = _load(duck, older_months, month)
        report = bronze.layout
        assert report.layout == layout and report.rows == bronze.rows == ROWS
        assert bronze.unknown_columns == []  # the layout's own columns are known, not reported
        # counts reconcile: every pickup is placed in a zone, unknown (264) or outside (265)
        assert report.pickups_in_a_zone + report.pickups_unknown + report.pickups_outside == ROWS
        assert report.pickups_unknown > 0 and report.pickups_outside > 0 and report.share_placed > 0.95
        assert report.vendor_without_tlc_id > 0 and report.unknown_vendor_names == report.unknown_payment_words == 0
        assert silver.rows_quarantined == 0 and silver.rows_out > 0.99 * ROWS

    # bronze keeps each layout as published: its own names and values
    (dds, words, lon_2009, lon_2010), = duck.query(
        "SELECT count(*) FILTER (WHERE vendor_name = 'DDS' OR vendor_id = 'DDS'), "
        "count(DISTINCT payment_type_as_published), count(start_lon), count(pickup_longitude) FROM bronze.yellow_tripdata")
    assert dds > 0 and words == 12 and lon_2009 > 0.97 * ROWS and lon_2010 > 0.97 * 2 * ROWS

    # silver: the one yellow contract; vendors, payment words and flags mapped
    assert {r[0] for r in duck.query("SELECT DISTINCT vendorid FROM silver.yellow_tripdata")} == {1, 2, None}
    assert {r[0] for r in duck.query("SELECT DISTINCT payment_type FROM silver.yellow_tripdata")} == {1, 2, 3, 4, None}
    assert {r[0] for r in duck.query("SELECT DISTINCT store_and_fwd_flag FROM silver.yellow_tripdata")} <= {"Y", "N", None}

    # every point drawn inside a zone lands in it; 0/0 and empty points in 264, far ones in 265
    with duck.connect() as conn:
        _expected_zones(conn)
        wrong_known, known, zero_wrong, far_wrong, far = conn.execute(f"""
            SELECT count(*) FILTER (p.zone IS NOT NULL AND s.pulocationid <> p.zone),
                   count(p.zone),
                   count(*) FILTER ((s.pickup_longitude = 0 OR s.pickup_longitude IS NULL) AND s.pulocationid <> {zones.UNKNOWN_ZONE}),
                   count(*) FILTER (p.zone IS NULL AND s.pickup_longitude <> 0 AND s.pulocationid <> {zones.OUTSIDE_ZONE}),
                   count(*) FILTER (p.zone IS NULL AND s.pickup_longitude <> 0)
            FROM silver.yellow_tripdata s
            LEFT JOIN known p ON p.lon = round(s.pickup_longitude, 6) AND p.lat = round(s.pickup_latitude, 6)
        """).fetchone()
        (dropoffs_wrong,) = conn.execute("""
            SELECT count(*) FROM silver.yellow_tripdata s JOIN known p
              ON p.lon = round(s.dropoff_longitude, 6) AND p.lat = round(s.dropoff_latitude, 6)
            WHERE s.dolocationid <> p.zone""").fetchone()
    assert (wrong_known, zero_wrong, far_wrong, dropoffs_wrong) == (0, 0, 0, 0)
    assert known > 0.95 * 2 * ROWS and far > 0

    # the ids are stable: the same files loaded again give exactly the same silver
    before = silver_rows(duck, YELLOW)
    again = DuckDBWarehouseResource(path=str(tmp_path / "again.duckdb"))
    for month in MONTHS:
        _load(again, older_months, month)
        _load(duck, older_months, month)
    assert silver_rows(again, YELLOW) == silver_rows(duck, YELLOW) == before


@pytest.mark.slow
def test_the_older_layouts_give_the_same_silver_on_postgresql(older_months, tmp_path, postgres_server):
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    pg = PostgresWarehouseResource(dsn=postgres_server.dsn(postgres_server.create_database()))
    for month in MONTHS:
        pg_bronze, pg_silver = _load(pg, older_months, month)
        duck_bronze, duck_silver = _load(duck, older_months, month)
        assert (pg_bronze.layout, pg_silver) == (duck_bronze.layout.__class__(**{
            **duck_bronze.layout.__dict__, "seconds": pg_bronze.layout.seconds}), duck_silver)
    assert silver_rows(pg, YELLOW) == silver_rows(duck, YELLOW)


@pytest.mark.slow
def test_the_older_layouts_give_the_same_ids_on_the_bigquery_emulator(older_months, tmp_path, platform_env,
                                                                      bigquery_env):
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    settings = Settings.from_env()
    lake, bq = build_lake(settings), build_warehouse(settings)
    for month in MONTHS:
        name = YELLOW.filename(month, PARQUET)
        lake.put(older_months / name, f"yellow/{name}")  # as the lake asset leaves it
        _, bq_silver = _load(bq, older_months, month)
        _, duck_silver = _load(duck, older_months, month)
        assert (bq_silver.rows_in, bq_silver.rows_out, bq_silver.rows_quarantined) == (
            duck_silver.rows_in, duck_silver.rows_out, duck_silver.rows_quarantined)
    assert silver_ids(bq, YELLOW) == silver_ids(duck, YELLOW)
    (placed,), = bq.query("SELECT countif(pulocationid NOT IN (264, 265)) FROM silver.yellow_tripdata")
    (duck_placed,), = duck.query("SELECT count(*) FILTER (WHERE pulocationid NOT IN (264, 265)) FROM silver.yellow_tripdata")
    assert placed == duck_placed > 0.95 * 2 * ROWS


def _raw_to_marts_with_every_check(older_months: Path, monkeypatch) -> dict:
    """Raw -> marts through Dagster for both older months, from a local HTTP stand-in for the TLC,
    on the warehouse the environment chooses, with every check of yellow, gold and the mart (all
    must pass); returns the mart's Yellow rows as {(zone, month): (trips, revenue)}."""
    from taxi_platform.assets import build_ingest_assets
    from taxi_platform.assets.dbt import build_dbt_assets
    from taxi_platform.checks import build_checks

    server, url = serve_directory(older_months)
    monkeypatch.setenv("TAXI_SOURCE", "tlc")
    monkeypatch.setenv("TAXI_TLC_URL", url)
    try:
        # (at the TLC the colours have different first months: yellow's run, with its checks and dbt's)
        ingest = [a for a in build_ingest_assets("tlc") if "yellow" in a.key.to_user_string()]
        checks = [c for c in build_checks() if all("green" not in k.asset_key.to_user_string() for k in c.check_keys)]
        with DagsterInstance.get() as instance:
            for month, layout in MONTHS.items():
                result = materialize([*ingest, *build_dbt_assets(), *checks], partition_key=month,
                                     instance=instance, resources=resources_from_env(), raise_on_error=False)
                assert result.success, failure_messages(result)
                failed = [(e.check_name, e.description) for e in result.get_asset_check_evaluations() if not e.passed]
                assert failed == [], failed
                (bronze,) = [m for m in result.get_asset_materialization_events()
                             if m.asset_key == AssetKey(["bronze", "yellow_tripdata"])]
                metadata = bronze.materialization.metadata
                assert metadata["layout"].value == layout and metadata["share_of_pickups_placed"].value > 0.95
    finally:
        server.shutdown()
    warehouse = build_warehouse(Settings.from_env())
    return {(zone, str(month)[:7]): (trips, round(float(revenue), 2)) for zone, month, trips, revenue in warehouse.query(
        "SELECT revenue_zone, revenue_month, total_monthly_trips, revenue_monthly_total_amount "
        "FROM marts.dm_monthly_zone_revenue WHERE service_type = 'Yellow'")}


def _expected_mart(older_months: Path) -> dict:
    """The mart's Yellow rows straight from the published files: each distinct trip's pickup point
    looked up in its zone (264 without a coordinate, 265 elsewhere), by zone name and pickup month."""
    with duckdb.connect() as conn:
        _expected_zones(conn)
        expected: dict = {}
        for month, (lon, lat, pickup, total) in zip(MONTHS, [
                ("Start_Lon", "Start_Lat", "Trip_Pickup_DateTime", "Total_Amt"),
                ("pickup_longitude", "pickup_latitude", "pickup_datetime", "total_amount")], strict=True):
            path = older_months / YELLOW.filename(month, PARQUET)
            for zone, pickup_month, trips, revenue in conn.execute(f"""
                WITH trips AS (SELECT DISTINCT * FROM read_parquet('{path}')),
                     lookup AS (SELECT * FROM read_csv('{ZONE_LOOKUP}'))
                SELECT lookup.Zone, strftime(CAST(t.{pickup} AS TIMESTAMP), '%Y-%m'), count(*), sum(t.{total})
                FROM trips t
                LEFT JOIN known k ON k.lon = round(t.{lon}, 6) AND k.lat = round(t.{lat}, 6)
                JOIN lookup ON lookup.LocationID = CASE WHEN k.zone IS NOT NULL THEN k.zone
                    WHEN t.{lon} IS NULL OR t.{lon} = 0 THEN 264 ELSE 265 END
                GROUP BY ALL""").fetchall():
                before = expected.get((zone, pickup_month), (0, 0.0))
                expected[(zone, pickup_month)] = (before[0] + trips, before[1] + revenue)
    return {k: (n, round(r, 2)) for k, (n, r) in expected.items()}


@pytest.mark.slow
def test_a_2009_and_a_2010_month_go_raw_to_marts_through_dagster_with_their_zones_revenue(
        older_months, platform_env, monkeypatch):
    assert _raw_to_marts_with_every_check(older_months, monkeypatch) == _expected_mart(older_months)


@pytest.mark.slow
def test_the_older_months_go_raw_to_marts_with_every_check_on_postgresql(
        older_months, platform_env, postgres_server, monkeypatch):
    for key, value in {"TAXI_WAREHOUSE": "postgres",
                       **postgres_server.env(postgres_server.create_database())}.items():
        monkeypatch.setenv(key, value)
    assert _raw_to_marts_with_every_check(older_months, monkeypatch) == _expected_mart(older_months)


@pytest.mark.slow
def test_the_older_months_go_raw_to_marts_with_every_check_on_the_bigquery_emulator(
        older_months, platform_env, bigquery_env, monkeypatch):
    assert _raw_to_marts_with_every_check(older_months, monkeypatch) == _expected_mart(older_months)
