"""A code location for fault-injection tests: the platform's own definitions, with a DuckDB
warehouse that can hang in the middle of a write so a test can kill the process there.

Load it as ``-m tests.support.faults`` (or a workspace's ``python_module``). With
``TAXI_TEST_HANG_AT=bronze|silver`` and ``TAXI_TEST_HANG_MARKER=<file>`` set, the first write of
that layer to reach its COMMIT writes its pid to the marker file and sleeps there, its
transaction open, until killed; once the marker exists (the re-run), nothing hangs. The fault
lives here, in the test harness: the product has no hook for it.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from dagster import Definitions

from taxi_platform import definitions as platform
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource


class _HangsBeforeCommit:
    """A DuckDB connection that hangs at the COMMIT of a transaction that wrote ``layer``."""

    def __init__(self, conn, layer: str, marker: Path):
        self._conn, self._layer, self._marker, self._wrote = conn, layer, marker, False

    def execute(self, sql: str, *args, **kwargs):
        text = " ".join(sql.split())
        if f"INSERT INTO {self._layer}." in text:
            self._wrote = True
        if text == "COMMIT" and self._wrote and not self._marker.exists():
            self._marker.write_text(str(os.getpid()))
            time.sleep(3600)
        return self._conn.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._conn, name)


class HangingDuckDBWarehouse(DuckDBWarehouseResource):
    @contextlib.contextmanager
    def connect(self, read_only: bool = False):
        with super().connect(read_only) as conn:
            layer, marker = os.environ.get("TAXI_TEST_HANG_AT"), os.environ.get("TAXI_TEST_HANG_MARKER")
            yield _HangsBeforeCommit(conn, layer, Path(marker)) if layer and marker else conn


defs = Definitions(
    assets=platform.defs.assets, asset_checks=platform.defs.asset_checks, jobs=platform.defs.jobs,
    schedules=platform.defs.schedules, sensors=platform.defs.sensors,
    resources={**platform.defs.resources, "warehouse": HangingDuckDBWarehouse()},
    executor=platform.defs.executor,
)
