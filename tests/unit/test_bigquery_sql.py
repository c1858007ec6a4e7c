"""The BigQuery warehouse's SQL, checked without a server: every statement parses as GoogleSQL,
and the typing and unique_row_id SQL, translated to DuckDB by sqlglot and run on the real
yellow month and on edge values, gives the ids of the contract. (This checks the SQL's logic;
BigQuery's own cast rules are not exercised here.)"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
import sqlglot

from taxi_platform.resources import build_warehouse
from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.settings import Settings
from taxi_platform.warehouse.bigquery import BigQueryWarehouseResource
from taxi_platform.warehouse.bigquery.sql import (
    inline_parameters,
    qualify_layers,
    silver_script,
    typed_select_sql,
    unique_row_id_sql,
)
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from tests.support.backends import REAL_YELLOW, load_month, silver_ids, write_csv
from tests.support.reference import expected_silver_ids


def _bigquery_ids(path, schema) -> tuple[set[str], list[str]]:
    """(ids of typable rows, quarantine reasons) from the BigQuery SQL run on DuckDB."""
    sql = (f"SELECT {unique_row_id_sql(schema)} AS unique_row_id, reason FROM "
           f"({typed_select_sql(schema, 'landed')})").replace("@filename", "'f'").replace("@load_id", "'l'")
    conn = duckdb.connect()
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in schema.required) + "}"
    optional = "".join(f", NULL::VARCHAR AS {c}" for c in schema.sql_names if c not in schema.required)
    conn.execute(f"CREATE TABLE landed AS SELECT *{optional}, 'f' AS filename, 'l' AS load_id FROM read_csv('{path}', "
                 f"header = true, columns = {columns}, auto_detect = false)")
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
    base = dict(zip(YELLOW.required, line.split(","), strict=True))
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


def test_dbt_layer_names_map_to_the_datasets_dbt_builds_on_bigquery():
    sql = ('SELECT count(*) FROM gold.fct_trips JOIN marts.m ON "gold.x" = x.gold.y '
           "WHERE z IN (SELECT z FROM staging.s UNION ALL SELECT z FROM seeds.t)")
    assert qualify_layers(sql, "zc_bronze", "zc_silver", "zc") == (
        'SELECT count(*) FROM zc_gold.fct_trips JOIN zc_marts.m ON "gold.x" = x.gold.y '
        "WHERE z IN (SELECT z FROM zc_staging.s UNION ALL SELECT z FROM zc_seeds.t)")
    assert qualify_layers("SELECT 1 FROM gold.t", "b", "s") == "SELECT 1 FROM gold.t"  # no dataset: as written


def test_script_parameters_are_inlined_as_literals_for_an_emulator_outside_strings():
    sql = ("SELECT @filename, '@filename', \"@filename\", `p.d.@x`, @@row_count, @month_start, @n "
           "FROM t WHERE filename = @filename")
    out = inline_parameters(sql, {"filename": "it's\\a\nb", "month_start": dt.datetime(2019, 1, 1), "n": 3})
    assert out == ("SELECT 'it\\'s\\\\a\\nb', '@filename', \"@filename\", `p.d.@x`, @@row_count, "
                   "DATETIME '2019-01-01 00:00:00', 3 FROM t WHERE filename = 'it\\'s\\\\a\\nb'")
    assert sqlglot.parse_one(out, read="bigquery").find(sqlglot.exp.Literal).this == "it's\\a\nb"
    with pytest.raises(KeyError, match="@missing"):
        inline_parameters("SELECT @missing", {})


def test_the_silver_scripts_temp_tables_carry_the_runs_tag():
    script = silver_script(YELLOW, "d_bronze.t", "d_silver.t", "d_silver.t_quarantine", "_1a2b")
    assert "CREATE TEMP TABLE _typed_1a2b AS" in script and "CREATE TEMP TABLE _keyed_1a2b AS" in script
    assert script.replace("_1a2b", "") == silver_script(YELLOW, "d_bronze.t", "d_silver.t", "d_silver.t_quarantine")


def test_taxi_warehouse_bigquery_reads_kestras_settings_and_the_gcs_lake_bucket():
    warehouse = build_warehouse(Settings.from_env({
        "TAXI_WAREHOUSE": "bigquery", "TAXI_LAKE": "gcs", "GCP_PROJECT_ID": "p", "GCP_LOCATION": "EU",
        "GCP_DATASET": "zoomcamp", "GCP_BUCKET_NAME": "b"}))
    assert isinstance(warehouse, BigQueryWarehouseResource) and warehouse.name == "bigquery"
    assert (warehouse.bronze_dataset, warehouse.silver_dataset, warehouse.location) == (
        "zoomcamp_bronze", "zoomcamp_silver", "EU")
    assert warehouse.source_uri(YELLOW, "yellow_tripdata_2019-01.csv.gz") == (
        "gs://b/yellow/yellow_tripdata_2019-01.csv.gz")


def test_the_external_table_option_reads_the_gzipped_object_in_place_as_text_columns():
    from taxi_platform.warehouse.bigquery import BigQueryWarehouseResource

    uri = "gs://taxi-lake/yellow/yellow_tripdata_2019-01.csv.gz"
    table = BigQueryWarehouseResource.external_table("p.taxi_bronze._load_x", uri, YELLOW.required)
    config = table.external_data_configuration
    assert config.source_format == "CSV" and config.source_uris == [uri]
    assert config.compression == "GZIP" and config.options.skip_leading_rows == 1
    assert [(f.name, f.field_type) for f in config.schema] == [(c, "STRING") for c in YELLOW.required]
    assert config.max_bad_records == 0


def test_the_bronze_load_way_comes_from_the_environment():
    from taxi_platform.resources import build_warehouse
    from taxi_platform.settings import Settings

    env = {"TAXI_WAREHOUSE": "bigquery", "TAXI_BIGQUERY_BRONZE_VIA": "external"}
    assert build_warehouse(Settings.from_env(env)).bronze_via == "external"
    assert build_warehouse(Settings.from_env({"TAXI_WAREHOUSE": "bigquery"})).bronze_via == "load"
