"""The TLC's own Parquet files as the source (TAXI_SOURCE=tlc), served by a local HTTP server:
months of 2020, 2024 and 2025 with the types and columns that drift between them load on DuckDB,
PostgreSQL (oldest and newest) and the BigQuery emulator with the same ids; a column the contract
lacks is kept in bronze and reported; a month loaded from the mirror and then from the TLC holds
exactly the TLC file's rows in silver, fct_trips and the mart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

from taxi_platform.errors import BadInputError
from taxi_platform.resources import build_lake, build_warehouse, resources_from_env
from taxi_platform.sample_source import write_month, write_month_parquet
from taxi_platform.schemas import GREEN, PARQUET, YELLOW
from taxi_platform.settings import Settings
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from taxi_platform.warehouse.postgres import PostgresWarehouseResource
from tests.support.backends import silver_ids, silver_rows
from tests.support.fixtures import serve_directory
from tests.support.runs import failure_messages

BIN = Path(sys.executable).parent
MONTHS = [(YELLOW, "2020-03"), (YELLOW, "2024-02"), (YELLOW, "2025-02"), (GREEN, "2020-04")]
ROWS = 1_500


@pytest.fixture(scope="module")
def tlc(tmp_path_factory):
    """A local stand-in for https://d37ci6vzurychx.cloudfront.net/trip-data with four months."""
    root = tmp_path_factory.mktemp("tlc")
    for i, (schema, month) in enumerate(MONTHS):
        write_month_parquet(schema, month, ROWS, root, seed=i)
    server, url = serve_directory(root)
    yield root, url
    server.shutdown()


def _load(warehouse, root: Path, schema, month: str):
    name = schema.filename(month, PARQUET)
    warehouse.load_bronze(schema, month, name, str(root / name))
    return warehouse.build_silver(schema, month, name)


def test_parquet_months_of_2020_2024_and_2025_load_on_duckdb_with_the_drifting_types_and_columns(tlc, tmp_path):
    root, _ = tlc
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    for schema, month in MONTHS:
        silver = _load(duck, root, schema, month)
        assert silver.rows_in == ROWS and silver.rows_quarantined == 0 and silver.rows_out > 0.9 * ROWS
    fees = dict(duck.query("SELECT filename, count(airport_fee) FROM silver.yellow_tripdata GROUP BY 1"))
    assert all(n > 0 for n in fees.values())  # airport_fee, and Airport_fee from 2023-12, both land
    (cbd_2025, cbd_2020), = duck.query(
        "SELECT count(*) FILTER (WHERE filename LIKE '%2025-02%' AND cbd_congestion_fee IS NOT NULL), "
        "count(*) FILTER (WHERE filename LIKE '%2020-03%' AND cbd_congestion_fee IS NOT NULL) FROM silver.yellow_tripdata")
    assert cbd_2025 > 0 and cbd_2020 == 0
    (ehail,), = duck.query("SELECT count(ehail_fee) FROM silver.green_tripdata")
    assert ehail == 0  # the NULL-typed column: no values


@pytest.mark.slow
def test_the_same_parquet_months_give_the_same_ids_on_postgresql(tlc, tmp_path, postgres_server):
    root, _ = tlc
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    pg = PostgresWarehouseResource(dsn=postgres_server.dsn(postgres_server.create_database()))
    for schema, month in MONTHS:
        assert _load(pg, root, schema, month) == _load(duck, root, schema, month)
    for schema in (YELLOW, GREEN):
        assert silver_rows(pg, schema) == silver_rows(duck, schema)
    assert pg.query("SELECT count(*) FROM bronze.green_tripdata")[0][0] == ROWS


@pytest.mark.slow
def test_the_same_parquet_months_give_the_same_ids_on_the_bigquery_emulator(tlc, tmp_path, platform_env,
                                                                            bigquery_env):
    root, _ = tlc
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    settings = Settings.from_env()
    lake, bq = build_lake(settings), build_warehouse(settings)
    for schema, month in MONTHS:
        name = schema.filename(month, PARQUET)
        lake.put(root / name, f"{schema.colour}/{name}")  # the load job reads the object in the lake
        bq_silver = _load(bq, root, schema, month)
        duck_silver = _load(duck, root, schema, month)
        assert (bq_silver.rows_in, bq_silver.rows_out, bq_silver.rows_quarantined) == (
            duck_silver.rows_in, duck_silver.rows_out, duck_silver.rows_quarantined)
    for schema in (YELLOW, GREEN):
        ids = {r[0] for r in bq.query(f"SELECT unique_row_id FROM silver.{schema.table}")}
        assert ids == {r[0] for r in duck.query(f"SELECT unique_row_id FROM silver.{schema.table}")}


def _cli_loads_2024_02_to_silver(tlc, tmp_path, **backend_env):
    """``dagster asset materialize`` of raw → silver for yellow 2024-02 from the TLC source, as a
    user runs it, on the backend ``backend_env`` names; silver then holds the ids a direct DuckDB
    load of the same file gives, and the contract's new columns."""
    root, url = tlc
    env = {**os.environ, "TAXI_SOURCE": "tlc", "TAXI_TLC_URL": url, **backend_env}
    done = subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "taxi_platform.definitions",
                           "--select", "*silver/yellow_tripdata", "--partition", "2024-02"],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr
    warehouse = build_warehouse(Settings.from_env(env))
    (rows, files), = warehouse.query("SELECT count(*), count(DISTINCT filename) FROM silver.yellow_tripdata")
    assert files == 1 and rows > 0.9 * ROWS
    columns = [c.lower() for c, _ in warehouse.describe("silver.yellow_tripdata")]
    assert {"airport_fee", "cbd_congestion_fee"} <= set(columns)
    duck = DuckDBWarehouseResource(path=str(tmp_path / "reference.duckdb"))
    _load(duck, root, YELLOW, "2024-02")
    assert silver_ids(warehouse, YELLOW) == silver_ids(duck, YELLOW)


@pytest.mark.slow
def test_the_cli_loads_a_tlc_month_to_silver_with_the_parquet_source_on_duckdb(tlc, platform_env, tmp_path):
    _cli_loads_2024_02_to_silver(tlc, tmp_path, **platform_env.vars())


@pytest.mark.slow
def test_the_cli_loads_a_tlc_month_to_silver_with_the_parquet_source_on_postgresql(
        tlc, platform_env, tmp_path, postgres_server, monkeypatch):
    env = {"TAXI_WAREHOUSE": "postgres", **postgres_server.env(postgres_server.create_database())}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _cli_loads_2024_02_to_silver(tlc, tmp_path, **platform_env.vars(), **env)


@pytest.mark.slow
def test_the_cli_loads_a_tlc_month_to_silver_with_the_parquet_source_on_the_bigquery_emulator(
        tlc, platform_env, tmp_path, bigquery_env):
    _cli_loads_2024_02_to_silver(tlc, tmp_path, **platform_env.vars(), **bigquery_env)


def test_a_column_the_contract_does_not_know_is_kept_in_bronze_and_a_missing_key_column_refuses_the_file(
        tlc, tmp_path):
    root, _ = tlc
    name = YELLOW.filename("2024-02", PARQUET)
    table = pq.read_table(root / name)
    extra = tmp_path / "extra" / name
    extra.parent.mkdir()
    pq.write_table(table.append_column("fleet_code", pa.array(["A"] * table.num_rows)), extra)
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    result = duck.load_bronze(YELLOW, "2024-02", name, str(extra))
    assert result.unknown_columns == ["fleet_code"]
    assert duck.query("SELECT DISTINCT fleet_code FROM bronze.yellow_tripdata") == [("A",)]
    duck.build_silver(YELLOW, "2024-02", name)
    assert "fleet_code" not in [c for c, _ in duck.describe("silver.yellow_tripdata")]

    missing = tmp_path / "missing" / name
    missing.parent.mkdir()
    pq.write_table(table.drop_columns(["PULocationID"]), missing)
    with pytest.raises(BadInputError, match="missing column pulocationid") as refused:
        duck.load_bronze(YELLOW, "2024-02", name, str(missing))
    assert refused.value.column == "pulocationid"


@pytest.mark.slow
def test_a_month_loaded_from_the_mirror_then_from_the_tlc_holds_exactly_the_tlc_files_rows(
        platform_env, mirror, tmp_path, monkeypatch):
    from taxi_platform.assets import build_ingest_assets
    from taxi_platform.assets.dbt import build_dbt_assets

    month = "2020-04"
    for i, schema in enumerate((YELLOW, GREEN)):  # the mirror's CSV, and the TLC's Parquet of other trips
        write_month(schema, month, 800, mirror.root, seed=20 + i)
        write_month_parquet(schema, month, 760, tmp_path / "tlc", seed=40 + i)
    server, url = serve_directory(tmp_path / "tlc")
    monkeypatch.setenv("TAXI_TLC_URL", url)
    warehouse = build_warehouse(Settings.from_env())
    try:
        with DagsterInstance.get() as instance:
            for source in ("mirror", "tlc"):
                monkeypatch.setenv("TAXI_SOURCE", source)
                ingest = build_ingest_assets(source)
                # (at the TLC the colours have different first months, so a run takes one colour)
                for selection in ([a for a in ingest if "yellow" in a.key.to_user_string()],
                                  [a for a in ingest if "green" in a.key.to_user_string()], build_dbt_assets()):
                    result = materialize(selection, partition_key=month, instance=instance,
                                         resources=resources_from_env(), raise_on_error=False)
                    assert result.success, failure_messages(result)
    finally:
        server.shutdown()
    for schema in (YELLOW, GREEN):
        files = warehouse.query(f"SELECT DISTINCT filename FROM silver.{schema.table}")
        assert files == [(schema.filename(month, PARQUET),)]
        assert warehouse.query(f"SELECT DISTINCT filename FROM bronze.{schema.table}") == files
    silver_ids = {r[0] for s in (YELLOW, GREEN) for r in warehouse.query(f"SELECT unique_row_id FROM silver.{s.table}")}
    gold = warehouse.query("SELECT trip_id, filename FROM gold.fct_trips")
    assert {r[0] for r in gold} == silver_ids and len(gold) == len(silver_ids)
    assert all(f.endswith(PARQUET) for _, f in gold)
    (mart_trips,), = warehouse.query("SELECT sum(total_monthly_trips) FROM marts.dm_monthly_zone_revenue")
    assert mart_trips == len(silver_ids)  # nothing counted twice
