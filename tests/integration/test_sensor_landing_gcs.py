"""The landing sensor over a GCS prefix (TAXI_LANDING_DIR=gs://bucket/prefix/) on the local GCS
emulator: one request per new object, none for an object already seen, a new one when the object
is overwritten (a new generation), and the requested run loads the object from GCS."""

from __future__ import annotations

import hashlib

import pytest
from dagster import DagsterInstance

from taxi_platform.sample_source import write_month
from taxi_platform.schemas import YELLOW
from taxi_platform.sources.landing import _gcs_client
from tests.support.gcs import bucket_name
from tests.support.sensors import Ticks, bronze_rows


@pytest.fixture
def landing_bucket(platform_env, gcs_env, monkeypatch):
    """A fresh bucket with the landing area at gs://<bucket>/landing/."""
    name = bucket_name("taxi-landing")
    monkeypatch.setenv("GCP_PROJECT_ID", "taxi-test")
    client = _gcs_client("taxi-test")
    bucket = client.create_bucket(name)
    monkeypatch.setenv("TAXI_LANDING_DIR", f"gs://{name}/landing/")
    return bucket


@pytest.fixture
def ticks(landing_bucket) -> Ticks:
    with DagsterInstance.get() as instance:
        yield Ticks(instance)


def upload(bucket, name: str, content: bytes):
    blob = bucket.blob(f"landing/{name}")
    blob.upload_from_string(content)
    return blob


def test_an_object_landed_in_gcs_gives_one_request_and_an_overwrite_gives_another(landing_bucket, ticks):
    upload(landing_bucket, "green_tripdata_2019-04.csv.gz", b"first version")
    upload(landing_bucket, "notes.txt", b"not a trip file")
    (first,) = ticks.tick()
    assert (first.job_name, first.partition_key) == ("green_tripdata_job", "2019-04")
    assert first.tags["taxi/landed_file"] == f"gs://{landing_bucket.name}/landing/green_tripdata_2019-04.csv.gz"
    assert ticks.tick() == []
    upload(landing_bucket, "green_tripdata_2019-04.csv.gz", b"second version")
    (second,) = ticks.tick()
    assert second.partition_key == "2019-04" and second.run_key != first.run_key
    assert ticks.tick() == []


@pytest.mark.slow
def test_the_requested_run_loads_the_object_from_gcs(landing_bucket, ticks, tmp_path):
    made = write_month(YELLOW, "2019-03", 300, tmp_path / "made")  # the mirror has no 2019-03
    upload(landing_bucket, made.name, made.read_bytes())
    (request,) = ticks.tick()
    result = ticks.run(request)
    assert result.success
    assert bronze_rows("yellow_tripdata_2019-03.csv.gz") == 300
    raw = result.asset_materializations_for_node("raw__yellow_tripdata")[0]
    assert raw.metadata["url"].value == f"gs://{landing_bucket.name}/landing/{made.name}"
    assert raw.metadata["sha256"].value == hashlib.sha256(made.read_bytes()).hexdigest()
