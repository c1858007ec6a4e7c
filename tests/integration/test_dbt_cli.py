"""The acceptance command: one `dagster asset materialize --select '*' --partition 2019-01` from a
local mirror builds raw through the dbt marts in one run, each step its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from taxi_platform.resources import build_warehouse
from taxi_platform.settings import Settings

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_materializing_everything_for_a_month_builds_raw_to_marts_in_one_run(platform_env):
    done = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "taxi_platform.definitions",
         "--select", "*", "--partition", "2019-01"],
        check=False, env={**os.environ, **platform_env.vars()}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    for step in ("raw__yellow_tripdata", "silver__green_tripdata", "dbt_reference_assets",
                 "dbt_trip_and_mart_assets"):
        assert f'Finished execution of step "{step}"' in done.stderr, step
    assert done.stderr.count("RUN_SUCCESS") == 1
    # two dbt invocations: the reference models, then fct_trips and the mart in one `dbt build`
    assert done.stderr.count("Running dbt command") == 2
    assert "dbt for partition 2019-01 and the marts: 2 built" in done.stderr
    warehouse = build_warehouse(Settings.from_env())
    assert warehouse.query("SELECT count(*) FROM gold.fct_trips")[0][0] == 10_000 + 8
    assert warehouse.query("SELECT sum(total_monthly_trips) FROM marts.dm_monthly_zone_revenue")[0][0] == 10_008
    assert warehouse.query("SELECT count(*) FROM gold.dim_zones")[0][0] == 265
