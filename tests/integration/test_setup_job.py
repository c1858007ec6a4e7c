"""setup_job (the old 07_gcp_setup flow) creates the GCS bucket and the BigQuery datasets when
they are missing, on the local emulators, and running it again changes nothing."""

from __future__ import annotations

import pytest
from dagster import Definitions

from taxi_platform.jobs import setup_job
from taxi_platform.resources import resources_from_env
from taxi_platform.sources.landing import _gcs_client
from tests.support.gcs import bucket_name


def run_setup() -> list[str]:
    result = Definitions(jobs=[setup_job], resources=resources_from_env()).resolve_job_def(
        "setup_job").execute_in_process(raise_on_error=False)
    assert result.success
    (materialization,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return materialization.event_specific_data.metadata["done"].value.splitlines()


@pytest.mark.slow
def test_the_setup_job_creates_the_bucket_and_the_datasets_once(platform_env, bigquery_env, monkeypatch):
    bucket = bucket_name("taxi-setup")
    monkeypatch.setenv("GCP_BUCKET_NAME", bucket)
    dataset = bigquery_env["GCP_DATASET"]

    assert run_setup() == [f"- bucket gs://{bucket} created in US",
                           f"- dataset {dataset}_bronze created in US", f"- dataset {dataset}_silver created in US"]
    assert _gcs_client(bigquery_env["GCP_PROJECT_ID"]).bucket(bucket).exists()
    assert run_setup() == [f"- bucket gs://{bucket} exists",
                           f"- dataset {dataset}_bronze exists", f"- dataset {dataset}_silver exists"]


def test_the_setup_job_on_the_embedded_default_only_makes_the_lake_folder(platform_env):
    lines = run_setup()
    assert lines[0].startswith("- lake folder ") and lines[0].endswith(" created")
    assert lines[1] == "- duckdb: nothing to create ahead (schemas and tables come with the first load)"
