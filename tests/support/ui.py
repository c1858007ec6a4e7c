"""`dagster dev` (webserver + daemon) for the end-to-end UI and GraphQL tests, and the headless
Chromium that drives the UI.

The server runs as `make dev` runs it: `dagster dev -w workspace.yaml` from the repository, with
``dagster.dev.yaml`` copied to a temporary DAGSTER_HOME (queued runs, pools, run retries), a
temporary TAXI_DATA_DIR and TAXI_SOURCE_URL pointing at a local HTTP mirror. It listens on
127.0.0.1 on a free port and is stopped with its whole process group (webserver, daemon, code
server, run workers). Beside it, as `make dev` does, `taxi-platform docs` serves the Great
Expectations Data Docs on another free port, where TAXI_DATA_DOCS_URL (the checks' ``data_docs``
links) points.

The browser is Debian's ``/usr/bin/chromium`` (``make browser`` installs it), driven by the
``playwright`` package: never ``playwright install``, whose download fails offline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_LOCATION_STATUS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(url: str, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
    """One plain GraphQL request (no client): the test's own look at the server's state."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        payload = json.loads(answer.read())
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


@dataclass
class DagsterDev:
    url: str
    port: int
    home: Path
    data_dir: Path
    log: Path
    env: dict[str, str]
    _process: subprocess.Popen | None = field(default=None, repr=False)
    docs_url: str = ""  # `taxi-platform docs`: the Data Docs the checks link to
    _docs: subprocess.Popen | None = field(default=None, repr=False)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def wait_until_loaded(self, timeout: float = 240) -> None:
        """Until the webserver answers and the code location `taxi_platform` has loaded."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dagster dev exited ({self._process.returncode}):\n{self.log_tail()}")
            try:
                data = graphql(self.url, _LOCATION_STATUS, timeout=10)["workspaceOrError"]
                entries = data.get("locationEntries") or []
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    errors = [e["locationOrLoadError"] for e in entries
                              if e["locationOrLoadError"]["__typename"] == "PythonError"]
                    if errors:
                        raise RuntimeError(f"the code location failed to load: {errors[0]['message']}")
                    return
                last = repr(entries)
            except (OSError, AssertionError) as exc:
                last = repr(exc)
            time.sleep(1)
        raise TimeoutError(f"dagster dev not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def stop(self) -> None:
        _interrupt(self._docs)
        if self._process is None or self._process.poll() is not None:
            return
        # Ctrl-C, as a person stops it (dagster dev ignores SIGTERM for a long while); then the
        # whole group: webserver, daemon, code servers and any run worker still going.
        for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 30)):
            try:
                os.killpg(self._process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self._process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(self._process.pid, signal.SIGKILL)  # stragglers once dagster dev has gone
        except ProcessLookupError:
            pass


def _interrupt(process: subprocess.Popen | None) -> None:
    """Ctrl-C to a process started here (its own session), then SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(10)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    # stop() sends Ctrl-C first: when the tests run in the background, SIGINT is inherited as
    # ignored, and an ignored signal stays ignored in the child; so spawn it with the default.
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        with open(log, "wb") as out:
            return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _wait_for_docs(process: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> None:
    """Until `taxi-platform docs` answers on ``url``."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"taxi-platform docs exited ({process.returncode}):\n"
                               f"{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"taxi-platform docs not answering on {url} after {timeout}s") from None
            time.sleep(0.5)


def start_dagster_dev(base: Path, source_url: str, extra_env: dict[str, str] | None = None) -> DagsterDev:
    """`dagster dev` with its own DAGSTER_HOME (dagster.dev.yaml, as `make dev` writes it) and data
    dir under ``base``, sourcing from ``source_url``, and `taxi-platform docs` serving the Data
    Docs its checks link to; returns once the code location has loaded."""
    home, data_dir = base / "dagster_home", base / "data"
    home.mkdir(parents=True)
    (data_dir / "landing").mkdir(parents=True)  # `make dev` creates the landing area too
    shutil.copyfile(REPO / "dagster.dev.yaml", home / "dagster.yaml")
    port = free_port()
    docs_port = free_port()
    while docs_port == port:
        docs_port = free_port()
    docs_url = f"http://127.0.0.1:{docs_port}"
    env = {**os.environ, "DAGSTER_HOME": str(home), "TAXI_DATA_DIR": str(data_dir),
           "TAXI_SOURCE_URL": source_url, "TAXI_DUCKDB_PATH": str(data_dir / "warehouse.duckdb"),
           "TAXI_DAGSTER_UI_URL": f"http://127.0.0.1:{port}", "TAXI_DATA_DOCS_URL": docs_url,
           **(extra_env or {})}
    for key in ("TAXI_LAKE", "TAXI_LAKE_DIR", "TAXI_WAREHOUSE", "TAXI_LANDING_DIR", "TAXI_ALERT_WEBHOOK_URL",
                "TAXI_ALERT_SMTP_HOST", "TAXI_AUTOMATION_DEFAULT_STATUS", "DAGSTER_PG_HOST"):
        if key not in (extra_env or {}):
            env.pop(key, None)
    log, docs_log = base / "dagster-dev.log", base / "taxi-platform-docs.log"
    docs = _spawn([str(BIN / "taxi-platform"), "docs", "--port", str(docs_port)], env, docs_log)
    try:
        _wait_for_docs(docs, docs_url, docs_log)
        process = _spawn([str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
                          "-w", "workspace.yaml"], env, log)
    except BaseException:
        _interrupt(docs)
        raise
    server = DagsterDev(f"http://127.0.0.1:{port}", port, home, data_dir, log, env, process, docs_url, docs)
    try:
        server.wait_until_loaded()
    except BaseException:
        server.stop()
        raise
    return server


def require_chromium() -> Path:
    """Debian's Chromium, or a failure that says how to get it (never a skip)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium) "
                    "before the browser tests")
    return CHROMIUM


def wait_for(condition, timeout: float, interval: float = 2.0, what: str = "condition"):
    """Poll ``condition()`` until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# The state of the runs and backfills on the server, read through GraphQL.
RUNS_QUERY = """
query Runs($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status tags { key value } } } } }
"""
BACKFILL_QUERY = """
query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { id status numPartitions
        runs(limit: 50) { runId status } } } }
"""
BACKFILLS_QUERY = """
{ partitionBackfillsOrError(limit: 20) { __typename
  ... on PartitionBackfills { results { id status partitionNames } } } }
"""


def runs(url: str) -> list[dict]:
    return graphql(url, RUNS_QUERY, {"filter": {}})["runsOrError"]["results"]


def backfill(url: str, backfill_id: str) -> dict:
    return graphql(url, BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]


def backfills(url: str) -> list[dict]:
    return graphql(url, BACKFILLS_QUERY)["partitionBackfillsOrError"]["results"]


RUN_FAILURES_QUERY = """
query Failures($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run {
  eventConnection(afterCursor: null) { events { __typename
    ... on ExecutionStepFailureEvent { stepKey error { message } } } } } } }
"""
FAILED_RUN = {"FAILURE", "CANCELED", "CANCELING"}
FAILED_BACKFILL = {"FAILED", "FAILING", "CANCELED", "CANCELING", "COMPLETED_FAILED"}


def run_failures(url: str, run_id: str) -> list[str]:
    """The step failures of a run, as 'step: message' (for assertion messages)."""
    run = graphql(url, RUN_FAILURES_QUERY, {"runId": run_id})["runOrError"]
    events = (run.get("eventConnection") or {}).get("events") or []
    return [f"{e['stepKey']}: {e['error']['message']}" for e in events
            if e["__typename"] == "ExecutionStepFailureEvent"]


def wait_for_run(server: DagsterDev, run_id: str, timeout: float = 300) -> dict:
    """Until the run (a full id or the 8-character prefix the UI shows) has succeeded; a failed
    or canceled run fails at once with its step failures and the server's log."""
    def succeeded():
        found = [r for r in runs(server.url) if r["runId"].startswith(run_id)]
        if found and found[0]["status"] in FAILED_RUN:
            raise AssertionError(f"run {found[0]['runId']} {found[0]['status']}: "
                                 f"{run_failures(server.url, found[0]['runId'])}\n{server.log_tail()}")
        return found[0] if found and found[0]["status"] == "SUCCESS" else None
    return wait_for(succeeded, timeout, what=f"run {run_id} to succeed")


def wait_for_backfill(server: DagsterDev, backfill_id: str, timeout: float = 300,
                      runs_only: bool = False) -> dict:
    """Until the backfill is COMPLETED_SUCCESS (or, with ``runs_only``, until it has runs and
    all of them succeeded: the daemon marks the backfill complete a tick later)."""
    def completed():
        state = backfill(server.url, backfill_id)
        failed = [r for r in state["runs"] if r["status"] in FAILED_RUN]
        if state["status"] in FAILED_BACKFILL or failed:
            details = {r["runId"]: run_failures(server.url, r["runId"]) for r in failed}
            raise AssertionError(f"backfill {backfill_id} {state['status']}: {details}\n{server.log_tail()}")
        if runs_only:
            return state if state["runs"] and all(r["status"] == "SUCCESS" for r in state["runs"]) else None
        return state if state["status"] == "COMPLETED_SUCCESS" else None
    return wait_for(completed, timeout, what=f"backfill {backfill_id} to complete")


def dismiss_welcome(url: str) -> None:
    """The UI's one-time 'Join the Dagster community' dialog would cover the page: mark it seen."""
    graphql(url, "mutation { setNuxSeen }")


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(require_chromium()), args=CHROMIUM_ARGS)


class Screenshots:
    """Numbered screenshots of each step in ``folder`` (emptied first)."""

    def __init__(self, page, folder: Path):
        self.page, self.folder, self.count = page, folder, 0
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    def __call__(self, name: str, page=None, **options) -> Path:
        """The page under test, or another one (a link the UI opened in a new tab)."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        (page or self.page).screenshot(path=str(path), **options)
        return path
