"""The landing sensor over a real folder, with a real instance: one request per new or changed
file, none for a file already seen, a log line and no request for a badly named file; and the
requested run loads the landed file (the source does not even have that month)."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from taxi_platform.sample_source import write_month
from taxi_platform.schemas import YELLOW
from tests.support.sensors import Ticks, bronze_rows

HOUR_AGO = time.time() - 3600


def drop(landing: Path, name: str, content: bytes, mtime: float = HOUR_AGO) -> Path:
    path = landing / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def landing(platform_env, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    monkeypatch.setenv("TAXI_LANDING_DIR", str(folder))
    monkeypatch.setenv("TAXI_LANDING_SETTLE_SECONDS", "60")
    return folder


@pytest.fixture
def ticks(platform_env) -> Ticks:
    with DagsterInstance.get() as instance:  # DAGSTER_HOME of platform_env: SQLite on disk
        yield Ticks(instance)


def test_a_new_file_gives_one_request_for_its_colour_and_month_that_names_the_file(landing, ticks):
    path = drop(landing, "green_tripdata_2019-04.csv.gz", b"first version")
    (request,) = ticks.tick()
    assert request.job_name == "green_tripdata_job"
    assert request.partition_key == "2019-04"
    assert request.tags["taxi/landed_file"] == str(path)
    assert request.tags["taxi/trigger"] == "landing" and request.tags["taxi"] == "green"


def test_the_same_file_again_gives_no_request_and_a_changed_file_gives_a_new_one(landing, ticks):
    path = drop(landing, "yellow_tripdata_2019-02.csv", b"first version")
    (first,) = ticks.tick()
    assert ticks.tick() == []
    assert ticks.tick() == []
    drop(landing, path.name, b"second, longer version", mtime=HOUR_AGO + 60)
    (second,) = ticks.tick()
    assert second.partition_key == "2019-02" and second.run_key != first.run_key
    assert ticks.tick() == []


def test_several_files_in_one_tick_each_get_their_request_none_skipped(landing, ticks):
    drop(landing, "yellow_tripdata_2019-01.csv.gz", b"a")
    drop(landing, "yellow_tripdata_2019-02.csv.gz", b"b")
    drop(landing, "sub/green_tripdata_2019-01.csv", b"c")
    requests = ticks.tick()
    assert sorted((r.job_name, r.partition_key) for r in requests) == [
        ("green_tripdata_job", "2019-01"), ("yellow_tripdata_job", "2019-01"),
        ("yellow_tripdata_job", "2019-02")]
    assert len({r.run_key for r in requests}) == 3


def test_a_badly_named_file_gives_no_request_and_one_log_line(landing, ticks, capfd):
    drop(landing, "yellow_tripdata_2019-1.csv.gz", b"x")
    drop(landing, "purple_tripdata_2019-01.csv.gz", b"x")
    drop(landing, "yellow_tripdata_2019-13.csv.gz", b"x")
    assert ticks.tick() == []
    err = capfd.readouterr().err
    for name in ("yellow_tripdata_2019-1.csv.gz", "purple_tripdata_2019-01.csv.gz",
                 "yellow_tripdata_2019-13.csv.gz"):
        assert f"ignoring {name}: the name does not match <colour>_tripdata_YYYY-MM.csv[.gz]" in err
    assert ticks.tick() == []
    assert "ignoring" not in capfd.readouterr().err  # reported once, not every 30 seconds


def test_a_file_still_being_written_waits_for_a_later_tick_and_is_not_forgotten(landing, ticks):
    path = drop(landing, "yellow_tripdata_2019-05.csv.gz", b"half", mtime=time.time())
    drop(landing, ".yellow_tripdata_2019-06.csv.gz", b"an upload in progress")
    assert ticks.tick() == []
    os.utime(path, (HOUR_AGO, HOUR_AGO))  # it has not changed for a while now
    (request,) = ticks.tick()
    assert request.partition_key == "2019-05"


def test_a_month_that_has_not_ended_waits_and_a_deleted_file_dropped_again_is_new(landing, ticks):
    drop(landing, "yellow_tripdata_2999-01.csv.gz", b"future")
    assert ticks.tick() == []
    assert "yellow_tripdata_2999-01.csv.gz" in json.loads(ticks.cursor)["noted"]
    path = drop(landing, "green_tripdata_2019-03.csv.gz", b"v1")
    assert len(ticks.tick()) == 1
    path.unlink()
    assert ticks.tick() == []
    drop(landing, path.name, b"v1")
    assert len(ticks.tick()) == 1


def test_the_requested_run_loads_the_landed_file_instead_of_downloading(landing, ticks, tmp_path):
    # The mirror only publishes 2019-01: a download of 2019-03 would 404.
    made = write_month(YELLOW, "2019-03", 300, tmp_path / "made")
    drop(landing, made.name, made.read_bytes())
    (request,) = ticks.tick()
    result = ticks.run(request)
    assert result.success
    assert bronze_rows("yellow_tripdata_2019-03.csv.gz") == 300
    raw = result.asset_materializations_for_node("raw__yellow_tripdata")[0]
    assert raw.metadata["url"].value == (landing / made.name).absolute().as_uri()


def test_a_landed_uncompressed_csv_is_recognised_by_content_and_loads_under_the_published_name(
        landing, ticks, tmp_path):
    made = write_month(YELLOW, "2019-04", 250, tmp_path / "made")
    plain = gzip.decompress(made.read_bytes())
    drop(landing, "yellow_tripdata_2019-04.csv", plain)
    (request,) = ticks.tick()
    assert request.partition_key == "2019-04"
    result = ticks.run(request)
    assert result.success
    assert bronze_rows("yellow_tripdata_2019-04.csv.gz") == 250
