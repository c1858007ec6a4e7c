"""What the UI shows follows the warehouse TAXI_WAREHOUSE chooses: the kinds of the bronze, silver
and dbt assets, their table names (``project.dataset.table`` on BigQuery) and a link to the table
in the BigQuery console."""

from __future__ import annotations

import pytest
from dagster import AssetKey

WAREHOUSES = {
    "duckdb": {},
    "postgres": {},
    "bigquery": {"GCP_PROJECT_ID": "my-project", "GCP_DATASET": "zoomcamp", "TAXI_LAKE": "gcs",
                 "GCP_BUCKET_NAME": "lake"},
}
TABLES = {"bronze/yellow_tripdata": "bronze.yellow_tripdata", "silver/green_tripdata": "silver.green_tripdata",
          "gold/fct_trips": "gold.fct_trips", "marts/dm_monthly_zone_revenue": "marts.dm_monthly_zone_revenue"}


@pytest.mark.parametrize("warehouse", list(WAREHOUSES))
def test_asset_kinds_and_table_names_follow_the_configured_warehouse(warehouse, monkeypatch):
    monkeypatch.setenv("TAXI_WAREHOUSE", warehouse)
    for key, value in WAREHOUSES[warehouse].items():
        monkeypatch.setenv(key, value)
    from taxi_platform.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    for key, table in TABLES.items():
        node = graph.get(AssetKey.from_user_string(key))
        assert warehouse in node.kinds, (key, node.kinds)
        others = set(WAREHOUSES) - {warehouse}
        assert not node.kinds & others, (key, node.kinds)
        name = node.metadata["dagster/table_name"]
        if warehouse == "bigquery":
            layer, table_name = table.split(".")
            assert name == f"my-project.zoomcamp_{layer}.{table_name}"
            assert node.metadata["console"].value.startswith("https://console.cloud.google.com/bigquery?project=my-project")
            assert f"!2szoomcamp_{layer}!3s{table_name}" in node.metadata["console"].value
        else:
            assert name == table and "console" not in node.metadata
