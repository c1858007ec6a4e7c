"""The colour jobs, the landing tag the raw asset honours, and the two instance configs."""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import AssetKey, Definitions, asset

from taxi_platform.assets import ingest_assets
from taxi_platform.assets.raw import landed_file_for
from taxi_platform.definitions import defs
from taxi_platform.jobs import build_colour_jobs, is_backfill_run
from taxi_platform.partitions import partitions_for
from taxi_platform.schemas import GREEN, YELLOW

REPO = Path(__file__).resolve().parents[2]


def test_each_colour_has_a_monthly_job_over_its_own_four_layers_tagged_with_the_colour():
    for colour in ("yellow", "green"):
        job = defs.resolve_job_def(f"{colour}_tripdata_job")
        assert job.tags["taxi"] == colour
        assert job.partitions_def == partitions_for(colour)
        keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
        assert {f"{layer}/{colour}_tripdata" for layer in ("raw", "lake", "bronze", "silver")} <= keys
        other = "green" if colour == "yellow" else "yellow"
        assert not any(other in key for key in keys)


def test_a_colour_tagged_asset_without_monthly_partitions_stays_out_of_the_colour_job():
    @asset(key=AssetKey(["gold", "yellow_summary"]), tags={"colour": "yellow"})
    def yellow_summary():
        return 1

    jobs = build_colour_jobs([*ingest_assets, yellow_summary])
    Definitions(assets=[*ingest_assets, yellow_summary], jobs=list(jobs.values()))  # loads
    assert AssetKey(["gold", "yellow_summary"]) not in jobs["yellow"].selection.resolve(
        [*ingest_assets, yellow_summary])


def test_a_run_is_a_backfill_run_when_dagster_tagged_it_with_its_backfill():
    assert is_backfill_run({"dagster/backfill": "abcdefgh", "taxi": "green"})
    assert not is_backfill_run({"taxi": "green", "dagster/partition": "2019-01"})


def test_the_raw_asset_takes_a_landed_file_only_for_its_own_colour_and_month():
    tags = {"taxi/landed_file": "/landing/yellow_tripdata_2019-03.csv"}
    assert landed_file_for(tags, YELLOW, "2019-03") == "/landing/yellow_tripdata_2019-03.csv"
    assert landed_file_for(tags, YELLOW, "2019-04") is None
    assert landed_file_for(tags, GREEN, "2019-03") is None
    assert landed_file_for({}, YELLOW, "2019-03") is None


def test_the_dev_instance_config_is_the_deployment_config_on_embedded_storage():
    deploy = yaml.safe_load((REPO / "dagster.yaml").read_text())
    dev = yaml.safe_load((REPO / "dagster.dev.yaml").read_text())
    assert "postgres" in deploy.pop("storage") and "storage" not in dev
    assert dev == deploy


def test_the_deployment_config_queues_runs_retries_crashed_ones_and_limits_the_warehouse_pool():
    deploy = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert deploy["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert deploy["concurrency"]["pools"]["default_limit"] == 1
    assert deploy["run_retries"] == {"enabled": True, "max_retries": 2,
                                     "retry_on_asset_or_op_failure": False}
    assert {v["env"] for v in deploy["storage"]["postgres"]["postgres_db"].values()} == {
        "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"}
