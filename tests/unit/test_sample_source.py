"""The synthetic sample source writes each colour's exact published layout, deterministically."""

from __future__ import annotations

import gzip

from taxi_platform.cli import main
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import GREEN, YELLOW
from tests.support.reference import expected_silver_ids, read_rows


def test_a_generated_month_has_the_published_header_crlf_and_quirks(tmp_path):
    path = write_month(YELLOW, "2019-03", 20_000, tmp_path)
    assert path == tmp_path / "yellow" / "yellow_tripdata_2019-03.csv.gz"
    raw = gzip.open(path, "rb").read()
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
    assert gzip.open(a).read() == gzip.open(b).read()
    assert gzip.open(a).readline().decode().rstrip("\r\n").split(",") == GREEN.header


def test_the_command_lays_files_out_like_the_mirror(tmp_path, capsys):
    assert main(["sample-source", "--months", "2019-01..2019-02", "--rows", "100", "--out", str(tmp_path)]) == 0
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv.gz")) == [
        "green/green_tripdata_2019-01.csv.gz", "green/green_tripdata_2019-02.csv.gz",
        "yellow/yellow_tripdata_2019-01.csv.gz", "yellow/yellow_tripdata_2019-02.csv.gz"]
    assert "TAXI_SOURCE_URL=" in capsys.readouterr().out
