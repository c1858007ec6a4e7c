"""The BigQuery warehouse against a real local BigQuery emulator (bqemulator, started by
tests/support/bigquery.py with a GCS emulator whose objects its load jobs read): a real
Dagster run with TAXI_WAREHOUSE=bigquery TAXI_LAKE=gcs gives the real month the same rows and
unique_row_ids as DuckDB, a re-run changes nothing, and edge values are typed, keyed and
quarantined as DuckDB does them.

What the emulator cannot show (it runs the GoogleSQL on DuckDB through SQLGlot): BigQuery's
own cast and rounding rules, partitioning and clustering, and transaction isolation between
concurrent writers. The SQL-level tests in tests/unit/test_bigquery_sql.py stay for those."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DagsterInstance

from taxi_platform.assets import ingest_assets
from taxi_platform.resources import build_lake, build_warehouse
from taxi_platform.schemas import YELLOW
from taxi_platform.settings import Settings
from taxi_platform.warehouse.bigquery import BigQueryWarehouseResource
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from tests.support.backends import (
    REAL_YELLOW,
    bronze_rows,
    load_month,
    quarantine_rows,
    silver_ids,
    silver_rows,
    write_csv,
)
from tests.support.reference import expected_silver_ids
from tests.support.runs import failure_messages, run_months

YELLOW_ASSETS = [a for a in ingest_assets if "yellow" in a.key.to_user_string()]
FILE = "yellow_tripdata_2019-01.csv.gz"


def _contents(warehouse) -> tuple:
    return bronze_rows(warehouse, YELLOW), silver_rows(warehouse, YELLOW), quarantine_rows(warehouse, YELLOW)


@pytest.mark.slow
def test_the_real_month_runs_through_dagster_on_bigquery_with_duckdbs_rows_and_ids(
        platform_env, bigquery_env, tlc_dir, tmp_path):
    with DagsterInstance.get() as instance:
        result = run_months(instance, "2019-01", YELLOW_ASSETS)
        assert result.success, failure_messages(result)
        lake = instance.get_latest_materialization_event(
            AssetKey(["lake", "yellow_tripdata"])).asset_materialization.metadata
        warehouse = build_warehouse(Settings.from_env())
        assert isinstance(warehouse, BigQueryWarehouseResource) and warehouse.api_endpoint
        first = _contents(warehouse)
        again = run_months(instance, "2019-01", YELLOW_ASSETS)
        assert again.success, failure_messages(again)
    # the load job read the month from the GCS lake the run uploaded it to
    assert lake["uri"].value == f"gs://{bigquery_env['GCP_BUCKET_NAME']}/yellow/{FILE}"
    bronze, silver, quarantine = first
    assert (len(bronze), len(silver), quarantine) == (10_000, 10_000, [])
    assert {r[0] for r in silver} == set(expected_silver_ids(tlc_dir / REAL_YELLOW, YELLOW))
    assert _contents(warehouse) == first  # the re-run replaced the month with the same rows
    # DuckDB, loading the same file, holds the same silver rows, value for value
    duck = DuckDBWarehouseResource(path=str(tmp_path / "reference.duckdb"))
    load_month(duck, YELLOW, "2019-01", tlc_dir / REAL_YELLOW)
    assert silver_rows(duck, YELLOW) == silver
    assert bronze_rows(duck, YELLOW) == bronze


@pytest.mark.slow
def test_edge_values_are_typed_keyed_and_quarantined_as_on_duckdb(bigquery_env, tmp_path):
    line = "2,2019-01-05 06:36:51,2019-01-05 06:50:42,1,3.72,1,N,68,236,1,14.0,0.0,0.5,1.0,0.0,0.3,15.8,"
    base = dict(zip(YELLOW.required, line.split(","), strict=True))
    edits = [{}, {"vendorid": "1.0"}, {"vendorid": " 2 "}, {"vendorid": ""}, {"fare_amount": "-0.004"},
             {"fare_amount": "0.125"}, {"fare_amount": "-0.125"}, {"fare_amount": "0.12499"},
             {"trip_distance": ".5"}, {"trip_distance": "-14.0"},
             {"tpep_pickup_datetime": "2019-01-02 03:04:05.7"}, {"vendorid": "1.5"},
             {"passenger_count": "abc"}, {"payment_type": "99999999999"},
             {"tpep_pickup_datetime": "2018-12-31 23:59:59"},  # outside the month
             {"fare_amount": "14"}]  # the same id as the first row
    path = write_csv(tmp_path / YELLOW.filename("2019-01"), YELLOW, [{**base, **e} for e in edits])
    # the load job reads the file from the GCS lake, as with TAXI_LAKE=gcs
    settings = Settings.from_env()
    build_lake(settings).put(path, f"yellow/{path.name}")
    bq = build_warehouse(settings)
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    bq_bronze, bq_silver = load_month(bq, YELLOW, "2019-01", path, max_fraction=1.0)
    _, duck_silver = load_month(duck, YELLOW, "2019-01", path, max_fraction=1.0)
    assert bq_bronze.rows == len(edits)
    assert silver_ids(bq, YELLOW) == silver_ids(duck, YELLOW)
    # counts agree; reasons agree; quarantined rows carry no line number on BigQuery
    assert bq_silver == duck_silver
    strip_line = [(f, None, *rest) for f, _, *rest in quarantine_rows(duck, YELLOW)]
    assert quarantine_rows(bq, YELLOW) == sorted(strip_line)


@pytest.mark.slow
def test_a_trip_without_a_pickup_in_two_months_files_keeps_one_id_as_on_duckdb(bigquery_env, tmp_path):
    line = "2,,2019-01-05 06:50:42,1,3.72,1,N,68,236,1,14.0,0.0,0.5,1.0,0.0,0.3,15.8,"
    row = dict(zip(YELLOW.required, line.split(","), strict=True))
    other = {**row, "tpep_pickup_datetime": "2019-02-03 04:05:06"}
    settings = Settings.from_env()
    bq, duck = build_warehouse(settings), DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    for month in ("2019-01", "2019-02"):
        path = write_csv(tmp_path / month / YELLOW.filename(month), YELLOW, [row, other] if month > "2019-01" else [row])
        build_lake(settings).put(path, f"yellow/{path.name}")
        for warehouse in (bq, duck):
            load_month(warehouse, YELLOW, month, path, max_fraction=1.0)
    # January owns the trip; February keeps only its other row
    counts = "SELECT COUNT(*), COUNT(DISTINCT unique_row_id) FROM silver.yellow_tripdata"
    assert [tuple(r) for r in bq.query(counts)] == [tuple(r) for r in duck.query(counts)] == [(2, 2)]
    assert silver_ids(bq, YELLOW) == silver_ids(duck, YELLOW)
    assert bq.duplicate_ids(YELLOW, [YELLOW.filename("2019-02")]) == 0
