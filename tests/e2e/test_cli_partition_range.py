"""`dagster asset materialize --partition-range` across the layers, as the README shows it: one
command, one run, two months from the published files to silver and on to gold/fct_trips.

The dbt reference models (seeds, staging views over silver, dim_zones) are unpartitioned, and a
partition range takes only assets with a single-run backfill policy, so they are built once
beforehand (with the first month, since the staging views read the silver tables)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from taxi_platform.resources import build_warehouse
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.settings import Settings

BIN = Path(sys.executable).parent
MONTHS = ["2019-01", "2019-02"]
RANGE = "tag:colour=yellow,tag:colour=green,gold/fct_trips"  # raw, lake, bronze, silver (+ checks), gold
REFERENCE = "tag:colour=yellow,tag:colour=green,tag:layer=seeds,tag:layer=staging,gold/dim_zones"


def _dagster(platform_env, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "taxi_platform.definitions",
                           *args], check=False, env={**os.environ, **platform_env.vars()},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _count_by_file(table: str) -> dict[str, int]:
    warehouse = build_warehouse(Settings.from_env())
    return dict(warehouse.query(f"SELECT filename, count(*) FROM {table} GROUP BY 1"))


@pytest.mark.slow
def test_a_partition_range_loads_two_months_from_raw_to_gold_in_one_run(platform_env, mirror):
    write_month(YELLOW, "2019-02", 1_500, mirror.root, seed=7)
    write_month(GREEN, "2019-02", 300, mirror.root, seed=8)
    _dagster(platform_env, "--select", REFERENCE, "--partition", "2019-01")

    _dagster(platform_env, "--select", RANGE, "--partition-range", "2019-01...2019-02")

    files = {schema.filename(month) for schema in (YELLOW, GREEN) for month in MONTHS}
    silver = {**_count_by_file("silver.yellow_tripdata"), **_count_by_file("silver.green_tripdata")}
    assert set(silver) == files and all(silver.values()), silver
    assert silver[YELLOW.filename("2019-01")] == 10_000  # the real month, loaded again: unchanged
    assert _count_by_file("gold.fct_trips") == silver  # every silver trip of both months, per file

    with DagsterInstance.get() as instance:  # platform_env's DAGSTER_HOME: what the CLI recorded
        (run,) = instance.get_runs(RunsFilter(tags={"dagster/asset_partition_range_start": "2019-01"}))
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags["dagster/asset_partition_range_end"] == "2019-02"
        assert {AssetKey(["raw", "yellow_tripdata"]), AssetKey(["silver", "green_tripdata"]),
                AssetKey(["gold", "fct_trips"])} <= set(run.asset_selection)
        for key in (AssetKey(["silver", "yellow_tripdata"]), AssetKey(["gold", "fct_trips"])):
            assert set(MONTHS) <= instance.get_materialized_partitions(key), key
        # one run, two months: each month's materialization carries that month's own figures
        raw, silver_meta, gold = (_month_metadata(instance, key) for key in (
            "raw/yellow_tripdata", "silver/yellow_tripdata", "gold/fct_trips"))
    for month in MONTHS:
        yellow, green = YELLOW.filename(month), GREEN.filename(month)
        assert raw[month]["file"].value == yellow
        assert raw[month]["bytes"].value == (mirror.root / "yellow" / yellow).stat().st_size
        assert silver_meta[month]["dagster/row_count"].value == silver[yellow]
        assert gold[month]["dagster/row_count"].value == silver[yellow] + silver[green]
    assert silver_meta["2019-01"]["dagster/row_count"].value != silver_meta["2019-02"]["dagster/row_count"].value


def _month_metadata(instance, key: str) -> dict:
    """{month: the metadata of that month's latest materialization of ``key``}."""
    from dagster import AssetRecordsFilter

    asset_key = AssetKey.from_user_string(key)
    return {month: instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[month]), limit=1,
    ).records[0].asset_materialization.metadata for month in MONTHS}
