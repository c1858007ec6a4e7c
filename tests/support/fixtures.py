"""Fixtures shared by every test layer: real files, a local HTTP mirror, an isolated platform
environment (data dir, DuckDB file, DAGSTER_HOME) and real PostgreSQL servers (the oldest and the
newest supported). Loaded for every test by tests/conftest.py (``pytest_plugins``)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.postgres import VERSIONS, PostgresServer, start_postgres

REPO = Path(__file__).resolve().parents[2]


def shared_tlc_dir() -> Path:
    """`../shared/data/tlc` beside the repository (TAXI_SHARED_DIR overrides `../shared`)."""
    shared = Path(os.environ.get("TAXI_SHARED_DIR") or REPO.parent / "shared")
    tlc = shared / "data" / "tlc"
    if not tlc.is_dir():
        pytest.fail(f"real TLC test files not found at {tlc}: clone next to shared/ or set TAXI_SHARED_DIR")
    return tlc


@pytest.fixture(scope="session")
def tlc_dir() -> Path:
    return shared_tlc_dir()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@dataclass
class Mirror:
    root: Path  # laid out like the release URLs: <root>/<colour>/<colour>_tripdata_YYYY-MM.csv.gz
    url: str

    def add(self, path: Path, colour: str, name: str | None = None) -> Path:
        target = self.root / colour / (name or path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        return target


def serve_directory(root: Path):
    """Start a threaded HTTP server on 127.0.0.1 serving ``root``; returns (server, url)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def mirror(tmp_path, tlc_dir) -> Mirror:
    """A local HTTP mirror holding copies of the real files in shared/data/tlc/mirror;
    tests add generated or broken months to it with ``mirror.add``."""
    root = tmp_path / "mirror"
    shutil.copytree(tlc_dir / "mirror", root)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    server, url = serve_directory(root)
    yield Mirror(root, url)
    server.shutdown()


@dataclass
class PlatformEnv:
    data_dir: Path
    dagster_home: Path
    duckdb_path: Path
    source_url: str

    def vars(self) -> dict[str, str]:
        return {"TAXI_DATA_DIR": str(self.data_dir), "TAXI_SOURCE_URL": self.source_url,
                "TAXI_DUCKDB_PATH": str(self.duckdb_path), "DAGSTER_HOME": str(self.dagster_home)}


@pytest.fixture
def platform_env(tmp_path, mirror, monkeypatch) -> PlatformEnv:
    """An isolated platform: its own data dir, DuckDB file and DAGSTER_HOME, sourcing from
    the local HTTP mirror. Set in os.environ too, so code reading the environment sees it."""
    env = PlatformEnv(tmp_path / "data", tmp_path / "dagster_home",
                      tmp_path / "data" / "warehouse.duckdb", mirror.url)
    env.dagster_home.mkdir(parents=True)
    (env.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for key, value in env.vars().items():
        monkeypatch.setenv(key, value)
    for key in ("TAXI_LAKE", "TAXI_LAKE_DIR", "TAXI_WAREHOUSE"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture(scope="session", params=VERSIONS, ids=lambda version: f"pg{version}")
def postgres_server(request) -> PostgresServer:
    """A real PostgreSQL server for the whole session (never skipped), once per supported major
    version: every test using it runs on the oldest and on the newest."""
    server = start_postgres(request.param)
    yield server
    server.stop()
