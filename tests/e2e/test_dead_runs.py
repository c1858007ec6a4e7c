"""A run killed mid-write never holds the warehouse: with the daemon running, a run launched by a
sensor and SIGKILLed in the middle of its silver transaction is marked failed by the watchdog,
its pool slot is freed, and the instance's run retries re-run the month to a clean result, with
no human action."""

from __future__ import annotations

import os
import shutil
import signal

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from taxi_platform.schemas import YELLOW
from tests.support.daemon import REPO, start_daemon, stop, wait_for, write_workspace
from tests.support.reference import expected_silver_ids
from tests.support.runs import table_digest

REAL = "yellow_tripdata_2019-01.csv.gz"


@pytest.mark.slow
def test_a_sigkilled_run_is_failed_freed_and_retried_to_a_clean_month_without_anyone(
        platform_env, tlc_dir, tmp_path, monkeypatch):
    shutil.copyfile(REPO / "dagster.dev.yaml", platform_env.dagster_home / "dagster.yaml")
    landing, marker = platform_env.data_dir / "landing", tmp_path / "in_silver_write"
    landing.mkdir(parents=True)
    for key, value in {"TAXI_LANDING_DIR": str(landing), "TAXI_LANDING_SETTLE_SECONDS": "0",
                       "TAXI_WATCHDOG_INTERVAL_SECONDS": "5", "TAXI_TEST_HANG_AT": "silver",
                       "TAXI_TEST_HANG_MARKER": str(marker)}.items():
        monkeypatch.setenv(key, value)
    workspace = write_workspace(tmp_path / "workspace.yaml", "tests.support.faults")
    log = tmp_path / "daemon.log"
    daemon = start_daemon(log, workspace)
    try:
        shutil.copyfile(tlc_dir / "mirror" / "yellow" / REAL, landing / REAL)  # the landing sensor runs it
        wait_for(marker.exists, "the landed month's run reaching its silver write", 300, daemon, log)
        os.kill(int(marker.read_text()), signal.SIGKILL)  # the run worker, its transaction open

        with DagsterInstance.get() as instance:
            def retried_to_success():
                runs = instance.get_runs(RunsFilter(job_name="yellow_tripdata_job"))
                return len(runs) == 2 and runs[0].status == DagsterRunStatus.SUCCESS and runs

            # No one acts: the watchdog (every 5 s here, a minute by default) and the run retries.
            retry, killed = wait_for(retried_to_success, "the killed run retried to success", 300, daemon, log)
            assert killed.status == DagsterRunStatus.FAILURE
            assert retry.parent_run_id == killed.run_id and retry.tags["dagster/partition"] == "2019-01"
            # (the code server saw its run process die and marked the run failed; the watchdog
            # gave its warehouse slot back, which the code server does not)
            assert len(instance.all_logs(killed.run_id, of_type=DagsterEventType.PIPELINE_FAILURE)) == 1
            assert instance.event_log_storage.get_concurrency_info("taxi_warehouse").claimed_slots == []
    finally:
        stop(daemon)
    # exactly one clean run's rows
    ids = {r[0] for r in _silver_ids()}
    assert ids == set(expected_silver_ids(tlc_dir / "mirror" / "yellow" / REAL, YELLOW))
    assert table_digest("bronze.yellow_tripdata")[0] == table_digest("silver.yellow_tripdata")[0] == 10_000


def _silver_ids():
    from taxi_platform.resources import build_warehouse
    from taxi_platform.settings import Settings

    return build_warehouse(Settings.from_env()).query("SELECT unique_row_id FROM silver.yellow_tripdata")
