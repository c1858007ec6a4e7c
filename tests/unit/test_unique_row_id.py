"""The unique_row_id contract, pinned on real rows and on the edge cases it spells out."""

from __future__ import annotations

import hashlib

import pytest

from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from tests.support.reference import key_text, read_rows, unique_row_id

# First rows of the real files, with their ids worked out by hand from the contract.
PINNED = [
    # yellow 2019-01 sample, row 1: pandas-rewritten numbers (14.0, 3.72)
    (YELLOW, "2|2019-01-05 06:36:51|2019-01-05 06:50:42|68|236|14.00|3.72"),
    # green 2019-01 head, row 1: distance written `.00`, a stray pickup from December
    (GREEN, "2|2018-12-21 15:17:29|2018-12-21 15:18:57|264|264|3.00|0.00"),
]


@pytest.mark.parametrize("schema,text", PINNED)
def test_the_key_text_of_a_real_first_row_follows_the_contract(schema, text, tlc_dir):
    row = read_rows(tlc_dir / "mirror" / schema.colour / schema.filename("2019-01"))[0]
    assert key_text(row, schema) == text


def test_the_ids_of_real_rows_are_pinned(tlc_dir):
    yellow = read_rows(tlc_dir / "mirror/yellow/yellow_tripdata_2019-01.csv.gz")
    green = read_rows(tlc_dir / "mirror/green/green_tripdata_2019-01.csv.gz")
    assert [unique_row_id(r, YELLOW) for r in yellow[:3]] == [
        "a089ccfeebea541859aad68316fc47cd",
        "7d8e0789d87b0a8d05fcd32eeaf5c354",
        "adff91daed4689312ce9bd3242056ad2",
    ]
    assert unique_row_id(green[0], GREEN) == hashlib.md5(PINNED[1][1].encode()).hexdigest()


def _duckdb_id(tmp_path, fields: dict[str, str]) -> str:
    """Load one yellow row through bronze and silver on DuckDB and return its id."""
    header = ",".join(YELLOW.header)
    row = ",".join(fields.get(c, "") for c in YELLOW.required)
    path = tmp_path / "one.csv"
    path.write_text(header + "\r\n" + row + "\r\n")
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    name = YELLOW.filename("2019-01")
    warehouse.load_bronze(YELLOW, "2019-01", name, str(path))
    warehouse.build_silver(YELLOW, "2019-01", name)
    return warehouse.query("SELECT unique_row_id FROM silver.yellow_tripdata")[0][0]


BASE = {"vendorid": "1", "tpep_pickup_datetime": "2019-01-01 00:46:40",
        "tpep_dropoff_datetime": "2019-01-01 00:53:20", "pulocationid": "151",
        "dolocationid": "239", "fare_amount": "7", "trip_distance": "1.50"}


@pytest.mark.parametrize("change,expected_text", [
    ({}, "1|2019-01-01 00:46:40|2019-01-01 00:53:20|151|239|7.00|1.50"),
    ({"fare_amount": "-5"}, "1|2019-01-01 00:46:40|2019-01-01 00:53:20|151|239|-5.00|1.50"),
    ({"trip_distance": ".6"}, "1|2019-01-01 00:46:40|2019-01-01 00:53:20|151|239|7.00|0.60"),
    ({"fare_amount": "-0.004"}, "1|2019-01-01 00:46:40|2019-01-01 00:53:20|151|239|0.00|1.50"),
    ({"fare_amount": "2.345"}, "1|2019-01-01 00:46:40|2019-01-01 00:53:20|151|239|2.35|1.50"),
    ({"vendorid": "1.0"}, "1|2019-01-01 00:46:40|2019-01-01 00:53:20|151|239|7.00|1.50"),
    ({"vendorid": ""}, "|2019-01-01 00:46:40|2019-01-01 00:53:20|151|239|7.00|1.50"),
    ({"pulocationid": "1", "dolocationid": "23"}, "1|2019-01-01 00:46:40|2019-01-01 00:53:20|1|23|7.00|1.50"),
])
def test_duckdb_hashes_exactly_the_contract_text(tmp_path, change, expected_text):
    fields = {**BASE, **change}
    assert key_text(fields, YELLOW) == expected_text
    assert _duckdb_id(tmp_path, fields) == hashlib.md5(expected_text.encode()).hexdigest()


def test_the_separator_keeps_12_3_and_1_23_apart():
    a = {**BASE, "pulocationid": "12", "dolocationid": "3"}
    b = {**BASE, "pulocationid": "1", "dolocationid": "23"}
    assert unique_row_id(a, YELLOW) != unique_row_id(b, YELLOW)


def test_a_voided_twin_with_negated_amounts_keeps_its_own_id():
    twin = {**BASE, "fare_amount": "-7"}
    assert unique_row_id(twin, YELLOW) != unique_row_id(BASE, YELLOW)
