"""Month keys, the column contract check, the header reader, settings."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest

from taxi_platform.errors import BadInputError
from taxi_platform.files import check_header, read_header
from taxi_platform.partitions import (
    MIRROR,
    TLC,
    all_colours_partitions,
    month_bounds,
    parse_month_range,
    partitions_for,
)
from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.settings import Settings


def test_the_mirrors_partitions_are_the_months_it_publishes_with_yyyy_mm_keys():
    for colour in ("yellow", "green"):
        keys = partitions_for(colour, MIRROR).get_partition_keys(current_time=dt.datetime(2024, 3, 15))
        assert (keys[0], keys[-1], len(keys)) == ("2019-01", "2021-07", 31)


def test_the_tlcs_partitions_start_with_each_colours_first_file_and_end_with_the_last_complete_month():
    at = dt.datetime(2024, 3, 15)
    yellow = partitions_for("yellow", TLC).get_partition_keys(current_time=at)
    green = partitions_for("green", TLC).get_partition_keys(current_time=at)
    assert (yellow[0], yellow[-1]) == ("2009-01", "2024-02") and (green[0], green[-1]) == ("2013-08", "2024-02")
    assert all_colours_partitions(TLC).get_partition_keys(current_time=at)[0] == "2009-01"


def test_an_unknown_source_says_which_ones_there_are():
    with pytest.raises(ValueError, match="use: mirror, tlc"):
        Settings.from_env({"TAXI_SOURCE": "kaggle"})


def test_a_month_range_lists_every_month_inclusive():
    assert parse_month_range("2019-11..2020-02") == ["2019-11", "2019-12", "2020-01", "2020-02"]
    assert parse_month_range("2019-01") == ["2019-01"]


def test_a_bad_month_key_says_what_is_expected():
    with pytest.raises(ValueError, match="expected YYYY-MM"):
        parse_month_range("2019-1")


def test_month_bounds_are_half_open():
    assert month_bounds("2019-12") == (dt.datetime(2019, 12, 1), dt.datetime(2020, 1, 1))


@pytest.mark.parametrize("colour", ["yellow", "green"])
def test_every_real_head_matches_its_colour_contract(tlc_dir, colour):
    schema = {"yellow": YELLOW, "green": GREEN}[colour]
    heads = sorted((tlc_dir / "heads").glob(f"{colour}_tripdata_*.csv"))
    assert len(heads) >= 17
    for head in heads:
        check_header(read_header(head, file=head.name, partition="x"), schema, file=head.name, partition="x")


def test_a_renamed_column_is_named_in_the_error():
    header = [("fare_amt" if c == "fare_amount" else c) for c in YELLOW.header]
    with pytest.raises(BadInputError) as err:
        check_header(header, YELLOW, file="yellow_tripdata_2019-02.csv.gz", partition="2019-02")
    message = str(err.value)
    assert "yellow_tripdata_2019-02.csv.gz" in message and "partition 2019-02" in message
    assert "missing column fare_amount" in message and "unexpected column fare_amt" in message
    assert err.value.column == "fare_amount"


def test_swapped_columns_are_reported_by_position():
    header = list(YELLOW.header)
    header[1], header[2] = header[2], header[1]
    with pytest.raises(BadInputError, match="not in position 2"):
        check_header(header, YELLOW, file="f", partition="p")


def test_an_empty_gzip_file_is_reported_as_empty(tmp_path):
    path = tmp_path / "x.csv.gz"
    with gzip.open(path, "wb"):
        pass
    with pytest.raises(BadInputError, match="is empty"):
        read_header(path, file="x.csv.gz", partition="2019-01")


def test_settings_default_to_the_embedded_warehouse_under_the_data_dir(tmp_path):
    settings = Settings.from_env({"TAXI_DATA_DIR": str(tmp_path)})
    assert settings.warehouse == "duckdb" and settings.lake == "local"
    assert settings.duckdb_path == tmp_path / "warehouse.duckdb"
    assert settings.lake_dir == tmp_path / "lake"
    assert settings.source_url.startswith("https://github.com/DataTalksClub/nyc-tlc-data/releases/download")


def test_the_tlc_source_knows_the_published_row_count_of_its_own_files_only():
    from taxi_platform.settings import DEFAULT_TLC_URL
    from taxi_platform.sources import TaxiSourceResource

    tlc = TaxiSourceResource(source="tlc", tlc_url=DEFAULT_TLC_URL)
    assert tlc.published_rows("yellow", "2024-01") == 2_964_624 and tlc.published_rows("green", "2020-04") == 35_644
    assert tlc.published_rows("yellow", "2026-01") is None  # not in the metadata collected
    assert TaxiSourceResource(source="tlc", tlc_url="http://127.0.0.1:9/copy").published_rows("yellow", "2024-01") is None
    assert TaxiSourceResource(source="mirror").published_rows("yellow", "2019-01") is None


def test_a_tlc_month_far_below_its_published_row_count_is_refused_unless_loaded_deliberately(tmp_path):
    from taxi_platform.sample_source import write_month_parquet
    from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource

    path = write_month_parquet(YELLOW, "2024-01", 500, tmp_path)
    duck = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    with pytest.raises(BadInputError, match="fewer than the 2,964,624 the TLC published for it"):
        duck.load_bronze(YELLOW, "2024-01", path.name, str(path), published_rows=2_964_624)
    assert duck.published_load(YELLOW, "2024-01") is None
    assert duck.load_bronze(YELLOW, "2024-01", path.name, str(path), published_rows=2_964_624, deliberate=True).rows == 500
