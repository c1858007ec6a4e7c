"""The GCS lake is chosen and configured by environment variables with Kestra's names."""

from __future__ import annotations

import pytest

from taxi_platform.lake.gcs import GCSLakeResource
from taxi_platform.resources import build_lake
from taxi_platform.settings import Settings


def test_taxi_lake_gcs_uses_kestras_setting_names():
    lake = build_lake(Settings.from_env({"TAXI_LAKE": "gcs", "GCP_PROJECT_ID": "p", "GCP_BUCKET_NAME": "b",
                                         "GCP_LOCATION": "EU"}))
    assert isinstance(lake, GCSLakeResource) and (lake.project, lake.bucket, lake.location) == ("p", "b", "EU")
    assert lake.uri("yellow/f.csv.gz") == "gs://b/yellow/f.csv.gz"


def test_taxi_lake_gcs_without_a_bucket_says_which_variable_is_missing():
    with pytest.raises(ValueError, match="GCP_BUCKET_NAME"):
        build_lake(Settings.from_env({"TAXI_LAKE": "gcs"}))
