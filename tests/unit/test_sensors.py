"""Landing file names the sensor accepts, and the month arithmetic the publication sensor uses."""

from __future__ import annotations

import pytest

from taxi_platform.sensors import LandedName, next_month, parse_landed_name


@pytest.mark.parametrize("name, parsed", [
    ("yellow_tripdata_2019-01.csv.gz", LandedName("yellow", "2019-01")),
    ("green_tripdata_2021-07.csv", LandedName("green", "2021-07")),
    ("yellow_tripdata_2019-13.csv.gz", None),  # no month 13
    ("yellow_tripdata_2019-1.csv.gz", None),
    ("Yellow_tripdata_2019-01.csv.gz", None),
    ("fhv_tripdata_2019-01.csv.gz", None),
    ("yellow_tripdata_2019-01.parquet", LandedName("yellow", "2019-01")),  # the TLC's form
    ("yellow_tripdata_2019-01.csv.gz.bak", None),
])
def test_only_colour_tripdata_month_csv_csv_gz_or_parquet_names_are_accepted(name, parsed):
    assert parse_landed_name(name) == parsed


def test_next_month_crosses_year_ends():
    assert next_month("2019-12") == "2020-01"
    assert next_month("2020-01") == "2020-02"
