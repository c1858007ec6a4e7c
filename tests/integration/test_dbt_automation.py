"""Nothing by hand after a fresh install: from an empty data dir, with a real daemon running the
sensors and automation on, a month dropped in the landing folder is loaded by the run the landing
sensor launches, and the automation sensor builds the seeds, the staging views and dim_zones (they
are missing), then gold/fct_trips for the month, then the mart, each in a run the daemon launched."""

from __future__ import annotations

import shutil

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from taxi_platform.resources import build_warehouse
from taxi_platform.settings import Settings
from tests.support.daemon import FINISHED, REPO, start_daemon, stop, wait_for

FCT, MART = AssetKey(["gold", "fct_trips"]), AssetKey(["marts", "dm_monthly_zone_revenue"])


REAL = "yellow_tripdata_2019-01.csv.gz"


def run_failures(instance, run_id: str) -> list[str]:
    return [e.dagster_event.event_specific_data.error.message for e in instance.all_logs(run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_FAILURE"]


@pytest.mark.slow
def test_a_month_dropped_in_the_landing_folder_reaches_the_mart_with_no_other_action(
        platform_env, tlc_dir, tmp_path, monkeypatch):
    shutil.copyfile(REPO / "dagster.dev.yaml", platform_env.dagster_home / "dagster.yaml")
    landing = platform_env.data_dir / "landing"
    landing.mkdir(parents=True)
    monkeypatch.setenv("TAXI_LANDING_DIR", str(landing))
    monkeypatch.setenv("TAXI_LANDING_SETTLE_SECONDS", "0")
    monkeypatch.setenv("TAXI_AUTOMATION_INTERVAL_SECONDS", "5")  # the daemon's ticks, not the product's pace
    log = tmp_path / "daemon.log"
    daemon = start_daemon(log)
    try:
        shutil.copyfile(tlc_dir / "mirror" / "yellow" / REAL, landing / REAL)
        with DagsterInstance.get() as instance:
            def mart_built_and_runs_done():
                runs = instance.get_runs()
                failed = [r for r in runs if r.status == DagsterRunStatus.FAILURE]
                assert not failed, [(r.job_name, r.asset_selection, run_failures(instance, r.run_id))
                                    for r in failed]
                return (instance.get_latest_materialization_event(MART) is not None and runs
                        and all(r.status in FINISHED for r in runs) and runs)

            def what_ran():
                return "\n".join(f"{r.job_name} {r.status} {sorted(k.to_user_string() for k in r.asset_selection or [])}"
                                  for r in instance.get_runs())

            # A guard against hanging, not a performance claim.
            try:
                runs = wait_for(mart_built_and_runs_done, "the landed month reaching the mart", 600, daemon, log)
            except BaseException:
                print("runs:", what_ran())
                raise
            assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * len(runs), what_ran()
            automated = instance.get_runs(RunsFilter(tags={"dagster/from_automation_condition": "true"}))
            built = set().union(*(r.asset_selection or set() for r in automated))
            assert {AssetKey(["seeds", "taxi_zone_lookup"]), AssetKey(["staging", "stg_yellow_tripdata"]),
                    AssetKey(["staging", "stg_green_tripdata"]), AssetKey(["gold", "dim_zones"]),
                    FCT, MART} <= built
            assert instance.get_materialized_partitions(FCT) == {"2019-01"}
    finally:
        stop(daemon)

    warehouse = build_warehouse(Settings.from_env())
    assert warehouse.query("SELECT count(*) FROM gold.fct_trips")[0][0] == 10_000
    assert warehouse.query("SELECT sum(total_monthly_trips) FROM marts.dm_monthly_zone_revenue")[0][0] == 10_000
