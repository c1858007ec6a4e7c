"""The older yellow layouts (2009, 2010) mapped onto the contract, on small hand-written files: the
layout is recognised by its columns; vendor names, payment words, flags and rate codes become
the TLC's codes; an unknown name or word is NULL and counted; the coordinates are placed in zones."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxi_platform.errors import BadInputError
from taxi_platform.sample_source import write_month_parquet
from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.sources import layouts, zones

TIMES_SQUARE, JFK = (-73.9855, 40.7580), (-73.7781, 40.6413)
PHILADELPHIA = (-75.1652, 39.9526)


def _write_2009(path, rows: list[dict]) -> None:
    names = [c for c in ("vendor_name", "Trip_Pickup_DateTime", "Trip_Dropoff_DateTime", "Passenger_Count",
                         "Trip_Distance", "Start_Lon", "Start_Lat", "Rate_Code", "store_and_forward", "End_Lon",
                         "End_Lat", "Payment_Type", "Fare_Amt", "surcharge", "mta_tax", "Tip_Amt", "Tolls_Amt",
                         "Total_Amt")]
    defaults = {"Trip_Pickup_DateTime": "2009-01-04 02:52:00", "Trip_Dropoff_DateTime": "2009-01-04 03:02:00",
                "Passenger_Count": 1, "Trip_Distance": 2.63, "Rate_Code": None, "store_and_forward": None,
                "Fare_Amt": 8.9, "surcharge": 0.5, "mta_tax": None, "Tip_Amt": 0.0, "Tolls_Amt": 0.0,
                "Total_Amt": 9.4, "End_Lon": JFK[0], "End_Lat": JFK[1]}
    table = pa.Table.from_pylist([{**defaults, **row} for row in rows])
    pq.write_table(table.select(names), path)


def _mapped(path, schema=YELLOW) -> tuple[list[dict], layouts.MappedLayout | None]:
    with layouts.contract_layout_of(path, schema, filename=path.name, partition="2009-01") as (out, mapped):
        relation = duckdb.sql(f"SELECT * FROM read_parquet('{out}')")
        return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()], mapped


def test_the_2009_layout_is_recognised_and_its_values_become_the_contracts_codes(tmp_path):
    path = tmp_path / "yellow_tripdata_2009-01.parquet"
    _write_2009(path, [
        {"vendor_name": "VTS", "Payment_Type": "CASH", "Start_Lon": TIMES_SQUARE[0], "Start_Lat": TIMES_SQUARE[1],
         "store_and_forward": 1.0, "Rate_Code": 2.0},
        {"vendor_name": "CMT", "Payment_Type": "Credit", "Start_Lon": 0.0, "Start_Lat": 0.0, "store_and_forward": 0.0},
        {"vendor_name": "DDS", "Payment_Type": "No Charge", "Start_Lon": PHILADELPHIA[0], "Start_Lat": PHILADELPHIA[1]},
        {"vendor_name": "cmt ", "Payment_Type": "Dispute", "Start_Lon": None, "Start_Lat": None},
        {"vendor_name": "XYZ", "Payment_Type": "Bitcoin", "Start_Lon": JFK[0], "Start_Lat": JFK[1]},
    ])
    rows, mapped = _mapped(path)
    assert mapped.layout is layouts.LAYOUT_2009
    assert [r["vendorid"] for r in rows] == [2, 1, None, 1, None]
    assert [r["payment_type"] for r in rows] == ["2", "1", "3", "4", None]
    assert [r["pulocationid"] for r in rows] == [230, zones.UNKNOWN_ZONE, zones.OUTSIDE_ZONE, zones.UNKNOWN_ZONE, 132]
    assert {r["dolocationid"] for r in rows} == {132}
    assert [r["store_and_fwd_flag"] for r in rows[:2]] == ["Y", "N"]
    assert rows[0]["ratecodeid"] == 2.0 and rows[0]["extra"] == 0.5 and rows[0]["fare_amount"] == 8.9
    assert rows[0]["tpep_pickup_datetime"] == "2009-01-04 02:52:00" and rows[0]["improvement_surcharge"] is None
    # published as published: the layout's own columns and values stay beside the contract's
    assert rows[0]["vendor_name"] == "VTS" and rows[0]["payment_type_as_published"] == "CASH"
    assert rows[0]["pickup_longitude"] == TIMES_SQUARE[0] and rows[0]["start_lon"] == TIMES_SQUARE[0]
    report = mapped.report
    assert (report.rows, report.pickups_in_a_zone, report.pickups_unknown, report.pickups_outside) == (5, 2, 2, 1)
    assert (report.vendor_without_tlc_id, report.unknown_vendor_names, report.unknown_payment_words) == (1, 1, 1)
    assert "XYZ" not in report.summary() and "1 unknown vendor names" in report.summary()


def test_the_2010_layout_with_pandas_index_and_timestamps_keeps_its_published_payment_words(tmp_path):
    path = tmp_path / "yellow_tripdata_2010-03.parquet"
    at = dt.datetime(2010, 3, 5, 8, 0)
    row = {"vendor_id": "CMT", "pickup_datetime": at, "dropoff_datetime": at + dt.timedelta(minutes=9),
           "passenger_count": 2, "trip_distance": 1.5, "pickup_longitude": JFK[0], "pickup_latitude": JFK[1],
           "rate_code": 1, "store_and_fwd_flag": "N", "dropoff_longitude": TIMES_SQUARE[0],
           "dropoff_latitude": TIMES_SQUARE[1], "payment_type": "Cre", "fare_amount": 45.0, "surcharge": 0.0,
           "mta_tax": 0.5, "tip_amount": 9.0, "tolls_amount": 4.15, "total_amount": 58.65, "__index_level_0__": 7}
    pq.write_table(pa.Table.from_pylist([row, {**row, "payment_type": "NOC", "vendor_id": "VTS"}]), path)
    rows, mapped = _mapped(path)
    assert mapped.layout is layouts.LAYOUT_2010
    assert [(r["vendorid"], r["payment_type"], r["pulocationid"], r["dolocationid"]) for r in rows] == [
        (1, "1", 132, 230), (2, "3", 132, 230)]
    assert rows[0]["payment_type_as_published"] == "Cre" and rows[0]["tpep_pickup_datetime"] == at
    assert rows[0]["fare_amount"] == 45.0 and rows[0]["extra"] == 0.0 and rows[0]["surcharge"] == 0.0
    assert "__index_level_0__" in mapped.kept and "payment_type_as_published" in mapped.kept


def test_todays_layout_lands_as_it_is_and_a_green_file_has_no_older_layout(tmp_path):
    path = tmp_path / "yellow_tripdata_2009-01.parquet"
    _write_2009(path, [{"vendor_name": "VTS", "Payment_Type": "CASH", "Start_Lon": 0.0, "Start_Lat": 0.0}])
    with pytest.raises(BadInputError, match="missing columns"):  # green has no older layout
        _mapped(path, GREEN)
    current = tmp_path / "yellow_tripdata_2024-02.parquet"
    write_month_parquet(YELLOW, "2024-02", 10, tmp_path)
    with layouts.contract_layout_of(current, YELLOW, filename=current.name, partition="2024-02") as (out, mapped):
        assert (out, mapped) == (current, None)  # today's layout lands as it is
    assert layouts.layout_of(["VendorID", "tpep_pickup_datetime"], YELLOW) is None


def test_a_file_that_cannot_be_mapped_fails_naming_the_file_partition_and_layout(tmp_path):
    path = tmp_path / "yellow_tripdata_2009-01.parquet"
    _write_2009(path, [{"vendor_name": "VTS", "Payment_Type": "CASH", "Start_Lon": 0.0, "Start_Lat": 0.0,
                        "Trip_Pickup_DateTime": "2009-01-04 02:52:00"}])
    broken = tmp_path / "broken" / path.name
    broken.parent.mkdir()
    broken.write_bytes(path.read_bytes()[:200] + path.read_bytes()[-300:])  # the footer, not the data
    with pytest.raises(BadInputError, match=r"yellow_tripdata_2009-01.parquet \(partition 2009-01"):
        _mapped(broken)
