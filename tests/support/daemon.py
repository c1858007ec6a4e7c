"""A real ``dagster-daemon`` for the tests that need schedules, sensors, the run queue, run
retries or automation: started in its own process group, stopped with everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from dagster import DagsterRunStatus

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def write_workspace(path: Path, module: str = "taxi_platform.definitions") -> Path:
    """A workspace file loading ``module`` from the repository as the code location."""
    path.write_text(f"load_from:\n  - python_module:\n      module_name: {module}\n"
                    f"      working_directory: {REPO}\n      location_name: taxi_platform\n")
    return path


def start_daemon(log: Path, workspace: Path | str = "workspace.yaml", env: dict | None = None) -> subprocess.Popen:
    """`dagster-daemon run` on the instance in DAGSTER_HOME, whose storage is created first, as `make
    dev` does (`taxi-platform instance`): the daemon and the code server it starts would otherwise
    both create a new SQLite instance at once, and both stamp its schema version ("more than one
    head present", and the code location never loads)."""
    from dagster import DagsterInstance

    env = dict(os.environ if env is None else env)
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        instance.upgrade()
    with open(log, "w") as out:
        return subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                                cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """Stop the daemon and everything it started (code server, run workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # stragglers in the group, if any
    except ProcessLookupError:
        pass
    process.wait()


def wait_for(predicate: Callable[[], object], what: str, seconds: float, daemon: subprocess.Popen | None = None,
             log: Path | None = None, poll: float = 1.0):
    """Poll until ``predicate()`` returns something truthy and return it (a guard against
    hanging, not a timed assertion: ``seconds`` is generous)."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if (daemon is not None and daemon.poll() is not None) or time.monotonic() > deadline:
            tail = log.read_text()[-5000:] if log and log.exists() else ""
            pytest.fail(f"never saw: {what}\ndaemon log:\n{tail}")
        time.sleep(poll)
