"""Raw to marts for one month on the warehouse the environment chooses, as comparable rows: what
the backend tests compare between DuckDB, PostgreSQL and BigQuery."""

from __future__ import annotations

import math

from dagster import AssetKey, DagsterInstance, materialize

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
    failed = [(e.asset_key.to_user_string(), e.check_name, e.description) for e in result.get_asset_check_evaluations()
              if not e.passed and e.severity.value == "ERROR"]
    assert failed == [], failed
    # column lineage, on every warehouse: fct_trips' trip_id is silver's unique_row_id through staging
    (fct,) = [m for m in result.get_asset_materialization_events()
              if m.asset_key == AssetKey(["gold", "fct_trips"])]
    lineage = fct.materialization.metadata["dagster/column_lineage"].value.deps_by_column
    assert {(d.asset_key.to_user_string(), d.column_name) for d in lineage["trip_id"]} == {
        ("staging/stg_yellow_tripdata", "trip_id"), ("staging/stg_green_tripdata", "trip_id")}, lineage["trip_id"]
    # row counts and column schemas: dagster-dbt's fetch_row_counts()/fetch_column_metadata() on a
    # server (they name the adapter as the storage kind); read once dbt has exited on DuckDB
    settings = Settings.from_env()
    metadata = fct.materialization.metadata
    storage = metadata.get("dagster/storage_kind")
    assert (storage.value if storage else "read after dbt") == (
        "read after dbt" if settings.warehouse == "duckdb" else settings.warehouse), sorted(metadata)
    columns = {c.name: c for c in metadata["dagster/column_schema"].schema.columns}
    assert "trip_id" in columns and columns["trip_id"].description, columns.get("trip_id")
    warehouse = build_warehouse(settings)
    (rows,), = warehouse.query("SELECT count(*) FROM gold.fct_trips")
    assert metadata["dagster/row_count"].value == metadata["table_row_count"].value == rows, metadata
    return warehouse, comparable(warehouse.query(TRIPS)), comparable(warehouse.query(MART))
