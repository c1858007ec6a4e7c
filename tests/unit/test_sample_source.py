"""The synthetic sample source writes each colour's exact published layout, deterministically."""

from __future__ import annotations

import gzip

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from taxi_platform.cli import main
from taxi_platform.sample_source import write_month, write_month_parquet, write_sample_source
from taxi_platform.schemas import GREEN, YELLOW
from tests.support.reference import expected_silver_ids, read_rows


def test_a_generated_month_has_the_published_header_crlf_and_quirks(tmp_path):
    path = write_month(YELLOW, "2019-03", 20_000, tmp_path)
    assert path == tmp_path / "yellow" / "yellow_tripdata_2019-03.csv.gz"
    raw = gzip.decompress(path.read_bytes())
    assert raw.startswith(",".join(YELLOW.header).encode() + b"\r\n")
    assert raw.count(b"\r\n") == 20_001 and b"\n" not in raw.replace(b"\r\n", b"")
    rows = read_rows(path)
    assert len(rows) == 20_000
    assert any(r["vendorid"] == "" for r in rows), "empty fields"
    assert any(r["fare_amount"].startswith("-") for r in rows), "negative fares"
    assert any(r["tpep_pickup_datetime"] < "2019-03-01" for r in rows), "stray pickups"
    assert any(r["trip_distance"].startswith(".") for r in rows), "distances like .86"
    assert len(expected_silver_ids(path, YELLOW)) < 20_000, "key duplicates"


def test_the_same_arguments_give_the_same_bytes(tmp_path):
    a = write_month(GREEN, "2019-02", 2_000, tmp_path / "a")
    b = write_month(GREEN, "2019-02", 2_000, tmp_path / "b")
    assert gzip.decompress(a.read_bytes()) == gzip.decompress(b.read_bytes())
    assert gzip.decompress(a.read_bytes()).decode().split("\r\n")[0].split(",") == GREEN.header


def test_the_command_lays_files_out_like_the_mirror(tmp_path, capsys):
    assert main(["sample-source", "--months", "2019-01..2019-02", "--rows", "100", "--out", str(tmp_path)]) == 0
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv.gz")) == [
        "green/green_tripdata_2019-01.csv.gz", "green/green_tripdata_2019-02.csv.gz",
        "yellow/yellow_tripdata_2019-01.csv.gz", "yellow/yellow_tripdata_2019-02.csv.gz"]
    assert "TAXI_SOURCE_URL=" in capsys.readouterr().out


def _same_trips_sql(csv_path, parquet_path, schema) -> str:
    """Rows of the CSV and the Parquet, paired by position, that differ in any of the CSV's
    columns (the CSV's text cast to the column's type, NULL for an empty field)."""
    differs = []
    for name in schema.header:
        kind = schema.column(name.lower()).type
        cast = {"TIMESTAMP": "TIMESTAMP", "TEXT": "VARCHAR"}.get(kind, "DOUBLE")
        differs.append(f'CAST(c."{name}" AS {cast}) IS DISTINCT FROM CAST(p."{name}" AS {cast})')
    return (f"WITH c AS (SELECT row_number() OVER () AS rn, * FROM read_csv('{csv_path}', all_varchar = true)), "
            f"p AS (SELECT row_number() OVER () AS rn, * FROM read_parquet('{parquet_path}')) "
            f"SELECT count(*) FILTER (WHERE {' OR '.join(differs)}), count(*) FROM c JOIN p USING (rn)")


def test_a_2020_yellow_parquet_month_has_the_2020_types_and_the_trips_of_the_csv(tmp_path):
    path = write_month_parquet(YELLOW, "2020-05", 5_000, tmp_path / "tlc", seed=3)
    assert path == tmp_path / "tlc" / "yellow_tripdata_2020-05.parquet"
    schema = pq.read_schema(path)
    assert schema.names == [*YELLOW.header, "airport_fee"]
    assert schema.field("VendorID").type == pa.int64() and schema.field("PULocationID").type == pa.int64()
    assert schema.field("passenger_count").type == pa.float64() and schema.field("RatecodeID").type == pa.float64()
    assert schema.field("payment_type").type == pa.int64()
    assert schema.field("tpep_pickup_datetime").type == pa.timestamp("us")
    assert schema.field("store_and_fwd_flag").type == pa.string()
    assert schema.field("fare_amount").type == pa.float64() and schema.field("airport_fee").type == pa.float64()

    csv_path = write_month(YELLOW, "2020-05", 5_000, tmp_path / "mirror", seed=3)
    assert duckdb.sql(_same_trips_sql(csv_path, path, YELLOW)).fetchall() == [(0, 5_000)]
    table = pq.read_table(path)
    assert table.column("VendorID").null_count > 0, "empty CSV fields are nulls"
    assert 7.5 in table.column("fare_amount").to_pylist(), "amounts are numbers, like 7.5"
    fees = table.column("airport_fee").to_pylist()
    assert 0 < fees.count(1.75) < len(fees) * 0.1 < fees.count(0.0)


def test_a_2024_01_yellow_month_has_int32_ids_int64_passenger_count_and_airport_fee_capitalised(tmp_path):
    schema = pq.read_schema(write_month_parquet(YELLOW, "2024-01", 1_000, tmp_path))
    assert schema.names[-2:] == ["congestion_surcharge", "Airport_fee"]
    assert "cbd_congestion_fee" not in schema.names
    for name in ("VendorID", "PULocationID", "DOLocationID"):
        assert schema.field(name).type == pa.int32()
    assert schema.field("passenger_count").type == pa.int64() and schema.field("RatecodeID").type == pa.int64()
    assert pq.read_schema(write_month_parquet(YELLOW, "2023-11", 10, tmp_path)).names[-1] == "airport_fee"


def test_a_2025_02_month_of_either_colour_ends_with_the_cbd_congestion_fee(tmp_path):
    for schema in (YELLOW, GREEN):
        table = pq.read_table(write_month_parquet(schema, "2025-02", 2_000, tmp_path))
        assert table.schema.names[-1] == "cbd_congestion_fee"
        assert table.schema.field("cbd_congestion_fee").type == pa.float64()
        assert 0 < table.column("cbd_congestion_fee").to_pylist().count(0.75) < 2_000
    assert "cbd_congestion_fee" not in pq.read_schema(write_month_parquet(GREEN, "2024-12", 10, tmp_path)).names


def test_a_2020_green_month_has_a_null_typed_ehail_fee_and_double_payment_and_trip_types(tmp_path):
    path = write_month_parquet(GREEN, "2020-05", 3_000, tmp_path / "tlc")
    schema = pq.read_schema(path)
    assert schema.names == GREEN.header
    assert pa.types.is_null(schema.field("ehail_fee").type)
    assert schema.field("payment_type").type == pa.float64() and schema.field("trip_type").type == pa.float64()
    assert schema.field("lpep_pickup_datetime").type == pa.timestamp("us")
    assert schema.field("VendorID").type == pa.int64()
    csv_path = write_month(GREEN, "2020-05", 3_000, tmp_path / "mirror")
    assert duckdb.sql(_same_trips_sql(csv_path, path, GREEN)).fetchall() == [(0, 3_000)]


def test_the_same_arguments_give_the_same_parquet_rows(tmp_path):
    a = pq.read_table(write_month_parquet(GREEN, "2024-02", 3_000, tmp_path / "a", seed=5))
    b = pq.read_table(write_month_parquet(GREEN, "2024-02", 3_000, tmp_path / "b", seed=5, threads=1))
    assert a.equals(b)


def test_green_and_yellow_of_the_same_month_and_seed_have_different_trips(tmp_path):
    def trips(schema, fmt):
        path = (write_month_parquet if fmt == "parquet" else write_month)(schema, "2019-03", 2_000, tmp_path)
        rows = duckdb.sql(f"SELECT CAST(\"{schema.pickup}\" AS VARCHAR), CAST(fare_amount AS DOUBLE), "
                          f"CAST(PULocationID AS INT) FROM '{path}'").fetchall()
        return set(rows), sum(r[1] for r in rows)

    for fmt in ("csv", "parquet"):
        (yellow, yellow_revenue), (green, green_revenue) = trips(YELLOW, fmt), trips(GREEN, fmt)
        assert len(yellow & green) < 10 and yellow_revenue != green_revenue


def test_green_share_shrinks_green_and_the_parquet_layout_is_flat(tmp_path):
    paths = write_sample_source(tmp_path, ["2024-01", "2024-02"], 1_000, green_share=0.25, fmt=".parquet")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "green_tripdata_2024-01.parquet", "green_tripdata_2024-02.parquet",
        "yellow_tripdata_2024-01.parquet", "yellow_tripdata_2024-02.parquet"]
    rows = {p.name: pq.ParquetFile(p).metadata.num_rows for p in paths}
    assert rows == {"yellow_tripdata_2024-01.parquet": 1_000, "yellow_tripdata_2024-02.parquet": 1_000,
                    "green_tripdata_2024-01.parquet": 250, "green_tripdata_2024-02.parquet": 250}
    csv = write_sample_source(tmp_path / "csv", ["2019-01"], 10, colours=("green",), green_share=0.001)
    assert len(read_rows(csv[0])) == 1


def test_the_parquet_writer_streams_one_row_group_per_batch(tmp_path):
    path = write_month_parquet(YELLOW, "2021-03", 25_000, tmp_path, batch_rows=10_000)
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_rows == 25_000
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert len(groups) >= 3 and max(groups) <= 10_000, groups
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left behind"


def test_the_command_writes_the_tlc_layout_and_names_its_variables(tmp_path, capsys):
    assert main(["sample-source", "--months", "2025-01", "--rows", "200", "--out", str(tmp_path),
                 "--format", "parquet", "--green-share", "0.5"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "green_tripdata_2025-01.parquet", "yellow_tripdata_2025-01.parquet"]
    assert pq.ParquetFile(tmp_path / "green_tripdata_2025-01.parquet").metadata.num_rows == 100
    assert f"TAXI_SOURCE=tlc TAXI_TLC_URL={tmp_path.absolute()}" in capsys.readouterr().out
