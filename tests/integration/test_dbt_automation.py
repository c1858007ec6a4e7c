"""Gold and the marts follow silver by themselves: with a real daemon evaluating
dbt_automation_sensor, a month loaded by the colour job (as a schedule, the landing sensor or a
backfill loads it) reaches gold/fct_trips and then the mart, each in a run the daemon launched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter, materialize

from taxi_platform.assets import ingest_assets
from taxi_platform.assets.dbt import dbt_reference_assets
from taxi_platform.resources import build_warehouse, resources_from_env
from taxi_platform.settings import Settings
from tests.support.daemon import FINISHED, stop
from tests.support.runs import failure_messages
from tests.support.sensors import platform_defs

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FCT, MART = AssetKey(["gold", "fct_trips"]), AssetKey(["marts", "dm_monthly_zone_revenue"])


def sensor_has_ticked(log: Path) -> bool:
    """The daemon has evaluated dbt_automation_sensor at least once."""
    return "dbt_automation_sensor" in log.read_text()


@pytest.mark.slow
def test_a_month_loaded_by_the_colour_job_reaches_gold_and_the_mart_without_anyone_asking(
        platform_env, tmp_path):
    shutil.copyfile(REPO / "dagster.dev.yaml", platform_env.dagster_home / "dagster.yaml")
    with DagsterInstance.get() as instance:
        # The reference models exist (make demo builds them; here one run, before the daemon).
        refs = materialize([*ingest_assets, dbt_reference_assets], partition_key="2019-01",
                           instance=instance, resources=resources_from_env(), raise_on_error=False)
        assert refs.success, failure_messages(refs)

    with open(tmp_path / "daemon.log", "w") as log:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                                  cwd=REPO, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        with DagsterInstance.get() as instance:
            deadline = time.monotonic() + 300  # guards against hanging, not a performance claim
            while not sensor_has_ticked(tmp_path / "daemon.log"):  # the first tick only notes the state
                assert daemon.poll() is None and time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()
                time.sleep(2)

            # The yellow month loads again, as a schedule tick or a landed file would load it.
            loaded = platform_defs().resolve_job_def("yellow_tripdata_job").execute_in_process(
                partition_key="2019-01", instance=instance, raise_on_error=False)
            assert loaded.success

            deadline = time.monotonic() + 600
            while True:
                automated = instance.get_runs(RunsFilter(tags={"dagster/from_automation_condition": "true"}))
                if (instance.get_latest_materialization_event(MART) is not None
                        and all(r.status in FINISHED for r in automated)):
                    break
                if daemon.poll() is not None or time.monotonic() > deadline:
                    runs = [(r.job_name, r.status, r.asset_selection) for r in instance.get_runs()]
                    pytest.fail(f"the mart was not built: {runs}\n{(tmp_path / 'daemon.log').read_text()[-4000:]}")
                time.sleep(2)
            assert [r.status for r in automated] == [DagsterRunStatus.SUCCESS] * len(automated) == [
                DagsterRunStatus.SUCCESS] * 2, "one run for fct_trips 2019-01, one for the mart"
            assert instance.get_materialized_partitions(FCT) == {"2019-01"}
    finally:
        stop(daemon)

    warehouse = build_warehouse(Settings.from_env())
    assert warehouse.query("SELECT count(*) FROM gold.fct_trips")[0][0] == 10_000 + 8
    assert warehouse.query("SELECT sum(total_monthly_trips) FROM marts.dm_monthly_zone_revenue")[0][0] == 10_008
