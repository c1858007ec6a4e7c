"""The BigQuery warehouse's SQL, checked without a server: every statement parses as GoogleSQL,
and the typing and unique_row_id SQL, translated to DuckDB by sqlglot and run on the real
yellow month and on edge values, gives the ids of the contract. (This checks the SQL's logic;
BigQuery's own cast rules are not exercised here.)"""

from __future__ import annotations

import duckdb
import sqlglot

from taxi_platform.resources import build_warehouse
from taxi_platform.resources.bigquery_warehouse import (
    BigQueryWarehouseResource,
    qualify_layers,
    silver_script,
    typed_select_sql,
    unique_row_id_sql,
)
from taxi_platform.resources.duckdb_warehouse import DuckDBWarehouseResource
from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.settings import Settings
from tests.support.backends import REAL_YELLOW, load_month, silver_ids, write_csv
from tests.support.reference import expected_silver_ids


def _bigquery_ids(path, schema) -> tuple[set[str], list[str]]:
    """(ids of typable rows, quarantine reasons) from the BigQuery SQL run on DuckDB."""
    sql = (f"SELECT {unique_row_id_sql(schema)} AS unique_row_id, reason FROM "
           f"({typed_select_sql(schema, 'landed')})").replace("@filename", "'f'")
    conn = duckdb.connect()
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in schema.sql_names) + "}"
    conn.execute(f"CREATE TABLE landed AS SELECT *, 'f' AS filename FROM read_csv('{path}', header = true, "
                 f"columns = {columns}, auto_detect = false)")
    rows = conn.execute(sqlglot.transpile(sql, read="bigquery", write="duckdb")[0]).fetchall()
    return {i for i, reason in rows if reason is None}, sorted(r for _, r in rows if r)


def test_every_bigquery_statement_parses_as_googlesql():
    for schema in (YELLOW, GREEN):
        script = silver_script(schema, "d_bronze.t", "d_silver.t", "d_silver.t_quarantine")
        assert len(sqlglot.parse(script, read="bigquery")) >= 10


def test_the_bigquery_id_sql_gives_the_contract_ids_on_the_real_month(tlc_dir):
    ids, reasons = _bigquery_ids(tlc_dir / REAL_YELLOW, YELLOW)
    assert ids == set(expected_silver_ids(tlc_dir / REAL_YELLOW, YELLOW)) and not reasons


def test_the_bigquery_sql_types_rounds_and_quarantines_edge_values_like_duckdb(tmp_path):
    line = "2,2019-01-05 06:36:51,2019-01-05 06:50:42,1,3.72,1,N,68,236,1,14.0,0.0,0.5,1.0,0.0,0.3,15.8,"
    base = dict(zip(YELLOW.sql_names, line.split(","), strict=True))
    edits = [{}, {"vendorid": "1.0"}, {"vendorid": " 2 "}, {"vendorid": ""}, {"fare_amount": "-0.004"},
             {"fare_amount": "0.125"}, {"fare_amount": "-0.125"}, {"fare_amount": "0.12499"},
             {"trip_distance": ".5"}, {"trip_distance": "-14.0"}, {"tpep_pickup_datetime": "2019-01-02 03:04:05.7"},
             {"vendorid": "1.5"}, {"passenger_count": "abc"}, {"payment_type": "99999999999"}]
    path = write_csv(tmp_path / YELLOW.filename("2019-01"), YELLOW, [{**base, **e} for e in edits])
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    load_month(duck, YELLOW, "2019-01", path, max_fraction=1.0)
    ids, reasons = _bigquery_ids(path, YELLOW)
    assert ids == silver_ids(duck, YELLOW)
    assert reasons == sorted(r for (r,) in duck.query("SELECT reason FROM silver.yellow_tripdata_quarantine"))


def test_layer_names_map_to_the_configured_datasets_outside_strings():
    sql = "SELECT count(*) FROM silver.yellow_tripdata WHERE filename = 'bronze.x' AND a IN (SELECT a FROM bronze.t)"
    assert qualify_layers(sql, "taxi_bronze", "taxi_silver") == (
        "SELECT count(*) FROM taxi_silver.yellow_tripdata WHERE filename = 'bronze.x' "
        "AND a IN (SELECT a FROM taxi_bronze.t)")


def test_taxi_warehouse_bigquery_reads_kestras_settings_and_the_gcs_lake_bucket():
    warehouse = build_warehouse(Settings.from_env({
        "TAXI_WAREHOUSE": "bigquery", "TAXI_LAKE": "gcs", "GCP_PROJECT_ID": "p", "GCP_LOCATION": "EU",
        "GCP_DATASET": "zoomcamp", "GCP_BUCKET_NAME": "b"}))
    assert isinstance(warehouse, BigQueryWarehouseResource) and warehouse.name == "bigquery"
    assert (warehouse.bronze_dataset, warehouse.silver_dataset, warehouse.location) == (
        "zoomcamp_bronze", "zoomcamp_silver", "EU")
    assert warehouse.source_uri(YELLOW, "yellow_tripdata_2019-01.csv.gz") == (
        "gs://b/yellow/yellow_tripdata_2019-01.csv.gz")
