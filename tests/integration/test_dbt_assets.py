"""The dbt models as assets in real Dagster runs on a real DuckDB file, from the local HTTP mirror
through raw, lake, bronze and silver to gold and the marts: months loaded out of order give the
mart of a full recomputation over silver, re-runs change nothing, and a failing dbt test fails
the run and blocks the mart."""

from __future__ import annotations

import gzip
import math

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, materialize

from taxi_platform.assets import ingest_assets
from taxi_platform.assets.dbt import dbt_asset_defs, dbt_trip_and_mart_assets
from taxi_platform.dbt_project import DBT_PROJECT_DIR
from taxi_platform.resources import build_warehouse, resources_from_env
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.settings import Settings
from tests.support.runs import failure_messages, rewrite_csv, table_digest

JAN_YELLOW, FEB_YELLOW = YELLOW.filename("2019-01"), YELLOW.filename("2019-02")
FCT, MART = AssetKey(["gold", "fct_trips"]), AssetKey(["marts", "dm_monthly_zone_revenue"])
GRAIN = "unique_combination_of_columns_fct_trips_service_type__trip_id"
MOVED = 25  # real January rows also published in the February file


@pytest.fixture
def instance(platform_env):
    with DagsterInstance.get() as instance:  # the fixture's DAGSTER_HOME
        yield instance


def run(instance, assets, partition: str | None = None, tags: dict | None = None, selection=None):
    return materialize(assets, partition_key=partition, instance=instance, tags=tags, selection=selection,
                       resources=resources_from_env(), raise_on_error=False)


def warehouse():
    return build_warehouse(Settings.from_env())


def add_february(mirror, tmp_path, tlc_dir):
    """Generated February files; the yellow one also carries MOVED real January trips (stray
    pickups that are in the January file too: silver gives them to the earlier file)."""
    with gzip.open(tlc_dir / "mirror" / "yellow" / JAN_YELLOW, "rt", newline="") as handle:
        january = [line for line in handle.read().split("\r\n")[1:] if line][:MOVED]
    generated = write_month(YELLOW, "2019-02", 1_500, tmp_path / "gen", seed=7)
    feb = rewrite_csv(generated, tmp_path / "feb" / FEB_YELLOW, lambda lines: [l for l in lines if l] + january)
    mirror.add(feb, "yellow")
    mirror.add(write_month(GREEN, "2019-02", 300, tmp_path / "gen", seed=8), "green")


def silver_trips() -> set[tuple[str, str]]:
    return set(warehouse().query("SELECT unique_row_id, filename FROM silver.yellow_tripdata UNION ALL "
                                 "SELECT unique_row_id, filename FROM silver.green_tripdata"))


def gold_trips() -> set[tuple[str, str]]:
    return set(warehouse().query("SELECT trip_id, filename FROM gold.fct_trips"))


def rows_of(filename: str, table: str = "gold.fct_trips") -> int:
    return warehouse().query(f"SELECT count(*) FROM {table} WHERE filename = ?", [filename])[0][0]


# The mart computed independently of dbt: straight from silver and the zone file.
RECOMPUTED_MART = f"""
WITH trips AS (
    SELECT 'Yellow' AS service_type, tpep_pickup_datetime AS pickup, pulocationid, fare_amount, extra,
           mta_tax, tip_amount, tolls_amount, 0.0 AS ehail_fee, improvement_surcharge, total_amount,
           passenger_count, trip_distance
    FROM silver.yellow_tripdata
    UNION ALL
    SELECT 'Green', lpep_pickup_datetime, pulocationid, fare_amount, extra, mta_tax, tip_amount,
           tolls_amount, ehail_fee, improvement_surcharge, total_amount, passenger_count, trip_distance
    FROM silver.green_tripdata
), zones AS (
    SELECT * FROM read_csv('{DBT_PROJECT_DIR / "seeds" / "taxi_zone_lookup.csv"}', header = true)
)
SELECT coalesce(zones."Zone", 'Unknown'), CAST(date_trunc('month', pickup) AS DATE), service_type,
       sum(fare_amount), sum(extra), sum(mta_tax), sum(tip_amount), sum(tolls_amount), sum(ehail_fee),
       sum(improvement_surcharge), sum(total_amount), count(*), avg(passenger_count), avg(trip_distance)
FROM trips LEFT JOIN zones ON zones."LocationID" = trips.pulocationid
GROUP BY ALL
"""
MART_COLUMNS = ("revenue_zone, revenue_month, service_type, revenue_monthly_fare, revenue_monthly_extra, "
                "revenue_monthly_mta_tax, revenue_monthly_tip_amount, revenue_monthly_tolls_amount, "
                "revenue_monthly_ehail_fee, revenue_monthly_improvement_surcharge, "
                "revenue_monthly_total_amount, total_monthly_trips, avg_monthly_passenger_count, "
                "avg_monthly_trip_distance")


def comparable(rows) -> list[tuple]:
    """Rows with floats rounded (sums in another order differ in the last bits), sorted."""
    def value(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else (
            round(v, 6) if isinstance(v, float) else v)
    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def digests() -> dict[str, tuple[int, str]]:
    return {table: table_digest(table) for table in
            ("gold.fct_trips", "gold.dim_zones", "marts.dm_monthly_zone_revenue", "staging.stg_yellow_tripdata")}


@pytest.mark.slow
def test_two_months_loaded_out_of_order_give_the_mart_of_a_recomputation_over_silver_and_reruns_change_nothing(
        instance, platform_env, mirror, tmp_path, tlc_dir):
    add_february(mirror, tmp_path, tlc_dir)
    everything = [*ingest_assets, *dbt_asset_defs]

    february = run(instance, everything, "2019-02")
    assert february.success, failure_messages(february)
    february_rows = rows_of(FEB_YELLOW, "silver.yellow_tripdata")
    assert february_rows > 1_500  # the January trips too: nobody else holds them yet
    assert rows_of(FEB_YELLOW) == february_rows
    assert gold_trips() == silver_trips()

    january = run(instance, [*ingest_assets, dbt_trip_and_mart_assets], "2019-01")
    assert january.success, failure_messages(january)
    # silver moved the MOVED trips to the January file; fct_trips followed
    assert rows_of(FEB_YELLOW, "silver.yellow_tripdata") == rows_of(FEB_YELLOW) < february_rows
    assert rows_of(JAN_YELLOW) == 10_000
    assert gold_trips() == silver_trips()

    chart = instance.get_latest_materialization_event(MART).asset_materialization.metadata[
        "monthly_trips_and_revenue"].value
    assert "| 2019-01 | Yellow | 10,0" in chart and "| 2019-02 | Green | 300 |" in chart

    mart = comparable(warehouse().query(f"SELECT {MART_COLUMNS} FROM marts.dm_monthly_zone_revenue"))
    assert mart == comparable(warehouse().query(RECOMPUTED_MART))
    months = {row[1].strftime("%Y-%m") for row in mart}
    assert {"2019-01", "2019-02"} <= months and len(months) > 2, "stray pickups land in their own months"
    assert sum(row[11] for row in mart) == len(silver_trips())  # every trip counted once

    metadata = instance.get_latest_materialization_event(FCT).asset_materialization.metadata
    total = len(silver_trips())
    assert metadata["dagster/row_count"].value == 10_000 + 8 and metadata["table_row_count"].value == total
    assert "trip_duration_minutes" in [c.name for c in metadata["dagster/column_schema"].value.columns]

    # re-running both months, as a single-run backfill, leaves every table identical
    before = digests()
    both = run(instance, [dbt_trip_and_mart_assets], tags={
        "dagster/asset_partition_range_start": "2019-01", "dagster/asset_partition_range_end": "2019-02"})
    assert both.success, failure_messages(both)
    assert digests() == before
    ranged = {month: instance.fetch_materializations(
        AssetRecordsFilter(asset_key=FCT, asset_partitions=[month]), limit=1).records[0].asset_materialization.metadata
        for month in ("2019-01", "2019-02")}
    assert ranged["2019-01"]["dagster/row_count"].value == 10_000 + 8  # each month its own count
    assert ranged["2019-01"]["dagster/row_count"].value + ranged["2019-02"]["dagster/row_count"].value == total


@pytest.mark.slow
def test_a_failing_dbt_test_fails_the_run_and_blocks_the_mart(instance, platform_env):
    ingested = run(instance, ingest_assets, "2019-01")
    assert ingested.success, failure_messages(ingested)
    # A yellow trip twice (silver would never): fct_trips builds, its grain test fails.
    warehouse().query("INSERT INTO silver.yellow_tripdata SELECT * FROM silver.yellow_tripdata LIMIT 1")

    result = run(instance, dbt_asset_defs, "2019-01")
    assert not result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == FCT}
    assert checks[GRAIN].passed is False
    assert checks["not_null_fct_trips_trip_id"].passed is True
    materialized = {e.event_specific_data.materialization.asset_key for e in result.get_asset_materialization_events()}
    assert FCT in materialized and MART not in materialized
    assert instance.get_latest_materialization_event(MART) is None
    (message,) = failure_messages(result)
    assert "dbt failed for partition 2019-01" in message and GRAIN in message


@pytest.mark.slow
def test_fct_trips_tests_read_the_runs_months_not_every_month_in_the_table(instance, platform_env):
    first = run(instance, [*ingest_assets, *dbt_asset_defs], "2019-01")
    assert first.success, failure_messages(first)
    # Another month's rows break the grain and a not-null rule: not this month's run's business
    # (its checks are the partition's), but a test over the whole table would fail on them.
    # (ids of their own: January's rebuild deletes any row holding one of January's ids)
    warehouse().query("INSERT INTO gold.fct_trips (service_type, trip_id, filename, pickup_borough) "
                      "SELECT 'Yellow', 'march-' || n, 'yellow_tripdata_2019-03.csv.gz', NULL "
                      "FROM (VALUES (1), (1)) t(n)")

    january = run(instance, [dbt_trip_and_mart_assets], "2019-01", selection=[FCT])  # (the mart reads them all)
    assert january.success, failure_messages(january)
    checks = {e.check_name: e for e in january.get_asset_check_evaluations() if e.asset_key == FCT}
    assert checks[GRAIN].passed and checks["not_null_fct_trips_pickup_borough"].passed
    assert len(checks) == 7


@pytest.mark.slow
def test_a_models_column_lineage_is_derived_once_and_then_read_from_the_cache(
        instance, platform_env, tmp_path, monkeypatch):
    from dagster_dbt.core import dbt_cli_event

    import taxi_platform.assets.dbt as dbt_assets

    monkeypatch.setattr(dbt_assets, "LINEAGE_CACHE", tmp_path / "column_lineage")
    derive, derived = dbt_cli_event._build_column_lineage_metadata, []

    def counted(**kwargs):
        derived.append(kwargs["dbt_resource_props"]["unique_id"])
        return derive(**kwargs)

    monkeypatch.setattr(dbt_cli_event, "_build_column_lineage_metadata", counted)

    def lineage(result) -> dict:
        return {m.asset_key.to_user_string(): m.materialization.metadata["dagster/column_lineage"].value
                for m in result.get_asset_materialization_events()
                if "dagster/column_lineage" in m.materialization.metadata}

    first = run(instance, [*ingest_assets, *dbt_asset_defs], "2019-01")
    assert first.success, failure_messages(first)
    assert "model.taxi_platform.fct_trips" in derived
    assert len(list((tmp_path / "column_lineage").iterdir())) == len(set(derived))
    derived.clear()
    again = run(instance, dbt_asset_defs, "2019-01")
    assert again.success, failure_messages(again)
    assert derived == []  # every model's lineage came from the cache ...
    models = lineage(again)
    assert {"gold/fct_trips", "gold/dim_zones", "marts/dm_monthly_zone_revenue"} <= set(models)
    assert models == {key: value for key, value in lineage(first).items() if key in models}  # ... the same
