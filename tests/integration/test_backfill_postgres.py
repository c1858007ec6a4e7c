"""A three-month `dagster job backfill` on an instance configured by the repository's
dagster.yaml (PostgreSQL storage, queued runs, pools) against a real PostgreSQL server, with a
real `dagster-daemon` launching the runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from taxi_platform.sample_source import write_month
from taxi_platform.schemas import GREEN
from tests.support.daemon import FINISHED, stop

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MONTHS = ["2019-01", "2019-02", "2019-03"]


def postgres_home(tmp_path: Path, postgres_server, monkeypatch) -> Path:
    """A DAGSTER_HOME holding the repository's dagster.yaml, its DAGSTER_PG_* variables pointing
    at a fresh database on the test server (set in os.environ for this process and children)."""
    home = tmp_path / "dagster_home_pg"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    db = postgres_server.create_database("dagster_instance")
    for key, value in {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": postgres_server.host,
                       "DAGSTER_PG_PORT": str(postgres_server.port), "DAGSTER_PG_DB": db,
                       "DAGSTER_PG_USER": postgres_server.user,
                       "DAGSTER_PG_PASSWORD": postgres_server.password}.items():
        monkeypatch.setenv(key, value)
    return home


def failures(instance: DagsterInstance, runs) -> str:
    """What went wrong in the runs that did not succeed, for the assertion message."""
    lines = []
    for run in runs:
        if run.status != DagsterRunStatus.SUCCESS:
            for entry in instance.all_logs(run.run_id):
                event = entry.dagster_event
                if event and (event.is_step_failure or event.is_run_failure or event.event_type_value
                              == "ENGINE_EVENT" and "error" in (entry.message or "").lower()):
                    error = getattr(event.event_specific_data, "error", None)
                    lines.append(f"{run.run_id[:8]} {event.event_type_value}: {entry.message} "
                                 f"{error.to_string() if error else ''}")
    return "\n".join(lines)


@pytest.mark.slow
def test_a_three_month_job_backfill_on_postgres_materializes_three_partitions(
        platform_env, mirror, postgres_server, tmp_path, monkeypatch):
    postgres_home(tmp_path, postgres_server, monkeypatch)
    for month in MONTHS[1:]:  # 2019-01 is the real green file on the mirror
        mirror.add(write_month(GREEN, month, 300, tmp_path / "made"), "green")

    with open(tmp_path / "daemon.log", "w") as log:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                                  cwd=REPO, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        launched = subprocess.run(
            [str(BIN / "dagster"), "job", "backfill", "-w", "workspace.yaml", "-j", "green_tripdata_job",
             "--from", MONTHS[0], "--to", MONTHS[-1], "--noprompt"],
            cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=600, check=False)
        assert launched.returncode == 0, launched.stdout + launched.stderr
        assert "Launched backfill job" in launched.stdout

        with DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            deadline = time.monotonic() + 900  # a guard against hanging, not a performance claim
            while True:
                runs = instance.get_runs(RunsFilter(job_name="green_tripdata_job"))
                if len(runs) == 3 and all(r.status in FINISHED for r in runs):
                    break
                if daemon.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"backfill did not finish: {[(r.run_id[:8], r.status) for r in runs]}; "
                                f"daemon log:\n{(tmp_path / 'daemon.log').read_text()[-5000:]}")
                time.sleep(2)

            assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * 3, failures(instance, runs)
            assert sorted(r.tags["dagster/partition"] for r in runs) == MONTHS
            assert len({r.tags["dagster/backfill"] for r in runs}) == 1, "one backfill, tagged"
            assert {r.tags["taxi"] for r in runs} == {"green"}
            for layer in ("raw", "lake", "bronze", "silver"):
                assert instance.get_materialized_partitions(
                    AssetKey([layer, "green_tripdata"])) == set(MONTHS), layer
            # The warehouse writers took turns: the pool got the instance's default limit of 1.
            assert instance.event_log_storage.get_concurrency_info("taxi_warehouse").slot_count == 1
    finally:
        stop(daemon)
