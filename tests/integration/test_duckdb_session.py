"""The DuckDB warehouse's session (``DuckDBWarehouseResource.session``): the file stays open for a
step's queries, each on its own connection, and is let go for GX's own connection and for other
processes (dbt's)."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from taxi_platform.warehouse.duckdb.resource import DuckDBWarehouseResource

OPENS = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"


def another_process_opens(path) -> bool:
    return subprocess.run([sys.executable, "-c", OPENS, str(path)], check=False, capture_output=True).returncode == 0


def test_a_session_keeps_the_file_open_and_lets_go_of_it_for_gx_and_for_other_processes(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouseResource(path=str(path))
    warehouse.query("CREATE TABLE t AS SELECT 1 AS x")
    with warehouse.session():
        assert not another_process_opens(path)  # open in this process all along
        with pytest.raises(duckdb.ConnectionException, match="different configuration"):
            duckdb.connect(str(path), read_only=True)
        # each query still has a connection of its own: a transaction is not shared
        with warehouse._transaction() as conn:
            conn.execute("INSERT INTO t VALUES (2)")
            assert warehouse.query("SELECT count(*) FROM t") == [(1,)]
        assert warehouse.query("SELECT count(*) FROM t") == [(2,)]
        with warehouse.outside_session():
            assert another_process_opens(path)  # dbt's process
            duckdb.connect(str(path), read_only=True).close()  # GX's read-only connection
            with warehouse.session():  # a session inside lets go at its end
                assert warehouse.query("SELECT count(*) FROM t") == [(2,)]
            assert another_process_opens(path)
        assert not another_process_opens(path)  # open again for the rest of the block
        assert warehouse.query("SELECT count(*) FROM t") == [(2,)]
    assert another_process_opens(path)
