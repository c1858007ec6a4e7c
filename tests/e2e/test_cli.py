"""The command line as people use it: `dagster asset materialize`, definitions validation,
and a process killed in the middle of a write."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from tests.support.publisher import Behaviour, Publisher
from tests.support.runs import table_digest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
REAL = "yellow_tripdata_2019-01.csv.gz"


def _env(platform_env, **extra) -> dict[str, str]:
    return {**os.environ, **platform_env.vars(), **extra}


def _materialize(platform_env, select: str, partition: str, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "taxi_platform.definitions",
         "--select", select, "--partition", partition],
        env=_env(platform_env, **extra), capture_output=True, text=True, timeout=600, check=False)


def test_the_cli_puts_the_10000_real_trips_into_silver(platform_env):
    done = _materialize(platform_env, "*silver/yellow_tripdata", "2019-01")
    assert done.returncode == 0, done.stderr[-3000:]
    rows, _ = table_digest("silver.yellow_tripdata", REAL)
    assert rows == 10_000
    # the literal selection of just silver, once its upstream is there, re-runs silver alone
    again = _materialize(platform_env, "silver/yellow_tripdata", "2019-01")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "silver__yellow_tripdata" in again.stderr and "bronze__yellow_tripdata" not in again.stderr
    assert table_digest("silver.yellow_tripdata", REAL)[0] == 10_000


def test_the_cli_download_waits_out_a_429_and_resumes_a_cut_transfer_with_a_range_request(
        platform_env, tlc_dir):
    payload = (tlc_dir / "mirror" / "yellow" / REAL).read_bytes()
    behaviour = Behaviour(payload=payload, throttle_first=1, retry_after="1", cut_first_at=0.5)
    with Publisher(behaviour) as publisher:
        done = _materialize(platform_env, "raw/yellow_tripdata", "2019-01", TAXI_SOURCE_URL=publisher.url)
    assert done.returncode == 0, done.stderr[-3000:]
    ranges = [headers.get("Range") for _, _, headers in behaviour.requests]
    assert ranges == [None, None, f"bytes={len(payload) // 2}-"]  # the 429, the cut answer, the rest
    assert behaviour.bytes_sent < 1.6 * len(payload)
    assert (platform_env.data_dir / "raw" / "yellow" / REAL).read_bytes() == payload


def test_silver_alone_on_an_empty_warehouse_says_to_materialize_upstream(platform_env):
    done = _materialize(platform_env, "silver/yellow_tripdata", "2019-01")
    assert done.returncode != 0
    assert "materialize bronze/yellow_tripdata for 2019-01 first" in done.stderr


def test_the_definitions_validate(platform_env):
    done = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "taxi_platform.definitions"],
                          env=_env(platform_env), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def test_dg_check_defs_passes(platform_env):
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([str(BIN / "dg"), "check", "defs"], cwd=repo,
                          env=_env(platform_env), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


@pytest.mark.parametrize("first_load", [True, False], ids=["first load", "re-load"])
def test_a_run_killed_during_the_silver_write_leaves_silver_as_it_was_and_the_next_run_is_not_blocked(
        platform_env, tmp_path, first_load):
    # The development instance: one warehouse slot, which the killed run held.
    shutil.copyfile(REPO / "dagster.dev.yaml", platform_env.dagster_home / "dagster.yaml")
    assert _materialize(platform_env, "*bronze/yellow_tripdata", "2019-01").returncode == 0
    if not first_load:
        assert _materialize(platform_env, "silver/yellow_tripdata", "2019-01").returncode == 0
    before = table_digest("silver.yellow_tripdata")

    marker = tmp_path / "in_silver_write"
    proc = subprocess.Popen(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "tests.support.faults",
         "--select", "silver/yellow_tripdata", "--partition", "2019-01"],
        env=_env(platform_env, TAXI_TEST_HANG_AT="silver", TAXI_TEST_HANG_MARKER=str(marker),
                 TAXI_FORCE_RELOAD="1"),  # an unchanged month would not be written at all
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, "the run ended before reaching the silver write"
            assert time.monotonic() < deadline, "the run never reached the silver write"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its step process, mid-transaction
        proc.wait()

    assert table_digest("silver.yellow_tripdata") == before
    with DagsterInstance.get() as instance:
        (killed,) = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    # The next run claims its worker, finds the dead one, fails it and frees its slot.
    done = _materialize(platform_env, "silver/yellow_tripdata", "2019-01")
    assert done.returncode == 0, done.stderr[-3000:]
    after = table_digest("silver.yellow_tripdata")
    assert after[0] == 10_000
    if not first_load:
        assert after == before
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
        (failure,) = instance.all_logs(killed.run_id, of_type=DagsterEventType.PIPELINE_FAILURE)
        assert "worker process" in failure.dagster_event.message and "is gone" in failure.dagster_event.message


def test_two_first_runs_at_once_on_a_new_instance_both_succeed_once_it_is_prepared(platform_env, tmp_path):
    home = tmp_path / "new_dagster_home"
    env = _env(platform_env, DAGSTER_HOME=str(home))
    prepared = subprocess.run([str(BIN / "taxi-platform"), "instance"], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    assert prepared.returncode == 0 and "instance: SQLite" in prepared.stdout, prepared.stderr
    runs = [subprocess.Popen(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "taxi_platform.definitions",
         "--select", f"raw/{colour}_tripdata", "--partition", "2019-01"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for colour in ("yellow", "green")]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    with DagsterInstance.from_config(str(home)) as instance:
        assert [r.status for r in instance.get_runs()] == [DagsterRunStatus.SUCCESS] * 2
