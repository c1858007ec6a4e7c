"""The real TLC files load with exact counts, and silver holds exactly the ids an independent
implementation of the contract computes (which line of a repeated id is kept:
test_duckdb_silver_at_scale.py)."""

from __future__ import annotations

import pytest

from taxi_platform.files import check_header, read_header
from taxi_platform.schemas import SCHEMAS
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from tests.support.reference import expected_silver_ids, read_rows


def _load(warehouse, schema, month, path):
    name = schema.filename(month)
    check_header(read_header(path, file=name, partition=month), schema, file=name, partition=month)
    bronze = warehouse.load_bronze(schema, month, name, str(path))
    silver = warehouse.build_silver(schema, month, name)
    ids = [r[0] for r in warehouse.query(
        f"SELECT unique_row_id FROM silver.{schema.table} WHERE filename = ? ORDER BY 1", [name])]
    return bronze, silver, ids


def test_the_real_yellow_january_sample_loads_all_10000_trips(tlc_dir, tmp_path):
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    path = tlc_dir / "mirror/yellow/yellow_tripdata_2019-01.csv.gz"
    bronze, silver, ids = _load(warehouse, SCHEMAS["yellow"], "2019-01", path)
    assert bronze.rows == 10_000
    assert (silver.rows_in, silver.rows_out, silver.rows_quarantined) == (10_000, 10_000, 0)
    assert ids == sorted(expected_silver_ids(path, SCHEMAS["yellow"]))


@pytest.mark.parametrize("colour", ["yellow", "green"])
def test_every_real_head_loads_with_exact_counts_and_reference_ids(tlc_dir, tmp_path, colour):
    schema = SCHEMAS[colour]
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    heads = sorted((tlc_dir / "heads").glob(f"{colour}_tripdata_*.csv"))
    total = 0
    for head in heads:
        month = head.stem.rsplit("_", 1)[1]
        rows = read_rows(head)
        bronze, silver, ids = _load(warehouse, schema, month, head)
        assert bronze.rows == len(rows) > 0, head.name
        assert silver.rows_quarantined == 0, head.name
        assert set(ids) == set(expected_silver_ids(head, schema)), head.name
        total += silver.rows_out
    # ids are unique across the whole table, whatever came from which month
    (distinct, count), = warehouse.query(
        f"SELECT count(DISTINCT unique_row_id), count(*) FROM silver.{schema.table}")
    assert distinct == count == total


def test_stray_pickups_from_earlier_months_are_kept_and_counted(tlc_dir, tmp_path):
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    _, silver, _ = _load(warehouse, SCHEMAS["green"], "2019-01",
                         tlc_dir / "mirror/green/green_tripdata_2019-01.csv.gz")
    assert silver.rows_out == 8 and silver.pickups_outside_month == 1  # the 2018-12-21 trip
