"""Raw to marts on PostgreSQL gives what it gives on DuckDB: the real January 2019 month through
every asset and check of the code location (ingest, GX checks, dbt seeds, staging, gold and the
mart), once per warehouse, chosen by environment variables only."""

from __future__ import annotations

import math

import pytest
from dagster import DagsterInstance, materialize

from taxi_platform.assets import ingest_assets
from taxi_platform.assets.dbt import dbt_asset_defs
from taxi_platform.checks import all_checks
from taxi_platform.resources import build_warehouse, resources_from_env
from taxi_platform.settings import Settings
from tests.support.runs import failure_messages

TRIPS = ("SELECT trip_id, filename, service_type, pickup_zone, dropoff_borough, payment_type_description, "
         "trip_duration_minutes, total_amount FROM gold.fct_trips")
MART = ("SELECT revenue_zone, revenue_month, service_type, revenue_monthly_fare, revenue_monthly_total_amount, "
        "total_monthly_trips, avg_monthly_passenger_count, avg_monthly_trip_distance "
        "FROM marts.dm_monthly_zone_revenue")


def comparable(rows) -> list[tuple]:
    """Rows with numbers as rounded floats (DuckDB DOUBLE against PostgreSQL NUMERIC), sorted."""
    def value(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, (int, float)) or type(v).__name__ == "Decimal":
            return round(float(v), 4)
        return v
    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


def raw_to_marts(monkeypatch, env: dict[str, str], checks=tuple(all_checks)):
    """Every asset (and ``checks``) for 2019-01 on the warehouse ``env`` chooses; returns the
    warehouse, fct_trips and the mart as comparable rows."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with DagsterInstance.get() as instance:
        result = materialize([*ingest_assets, *dbt_asset_defs, *checks], partition_key="2019-01",
                             instance=instance, resources=resources_from_env(), raise_on_error=False)
    assert result.success, failure_messages(result)
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations()
              if not e.passed and e.severity.value == "ERROR"]
    assert failed == []
    warehouse = build_warehouse(Settings.from_env())
    return warehouse, comparable(warehouse.query(TRIPS)), comparable(warehouse.query(MART))


@pytest.mark.slow
def test_a_real_month_from_raw_to_marts_on_postgresql_equals_the_same_month_on_duckdb(
        platform_env, postgres_server, monkeypatch):
    duck, duck_trips, duck_mart = raw_to_marts(monkeypatch, {"TAXI_WAREHOUSE": "duckdb"})
    pg, pg_trips, pg_mart = raw_to_marts(
        monkeypatch, {"TAXI_WAREHOUSE": "postgres", **postgres_server.env(postgres_server.create_database())})
    assert (duck.name, pg.name) == ("duckdb", "postgres")
    assert len(pg_trips) == 10_000 + 8  # the real yellow month and the real green head
    assert pg_trips == duck_trips
    assert sum(row[5] for row in pg_mart) == 10_008
    assert pg_mart == duck_mart
