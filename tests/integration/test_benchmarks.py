"""The benchmark harness (benchmarks/, `make bench`) end to end on tiny months: the floors of the CSV
and the Parquet month, the bare DuckDB statement, the core functions, a month through Dagster, the
GX suites and the Kestra baseline on a local PostgreSQL server run without error, and the report
has every target. Kept to what costs little (about 30 s on an idle 2-core machine, 45 s on a busy
one, mostly the children importing Dagster and Great Expectations): the other measurements run the
same workers (a month through Dagster) or dbt (minutes each), and `make bench BENCH_ARGS=--quick`
runs them all. No timing is asserted: a benchmark's figures belong in benchmarks/RESULTS.md, not in
a test. The report's logic, from made-up figures, is tests/unit/test_benchmarks.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from benchmarks.workers import bare_sql
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import YELLOW
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource

REPO = Path(__file__).resolve().parents[2]
ROWS = 2000
MEASURED = {"floor", "duckdb_bare", "duckdb_core", "duckdb_dagster", "gx", "parquet_floor", "kestra_first"}


@pytest.mark.slow
def test_quick_mode_measures_tiny_months_and_writes_the_report(tmp_path):
    work, report = tmp_path / "work", tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--rows", str(ROWS), "--parquet-rows", str(ROWS),
         "--only", ",".join(sorted(MEASURED)), "--work-dir", str(work), "--output", str(report)],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr

    results = json.loads((work / "results.json").read_text())
    measured = results["measurements"]
    assert set(measured) == MEASURED
    for name, m in measured.items():
        (run,) = m["runs"]
        assert "error" not in run["result"], (name, run["result"])
        assert run["seconds"] > 0 and run["child"]["maxrss_bytes"] > 0
    result = {name: m["runs"][0]["result"] for name, m in measured.items()}
    for name in ("duckdb_core", "duckdb_dagster"):
        assert result[name]["rows_in"] == ROWS and 0 < result[name]["rows_out"] <= ROWS, name
    assert result["duckdb_dagster"]["lake_unchanged"] is False
    # the bare statement keys the month as silver does: its distinct ids are silver's rows
    assert result["duckdb_bare"]["rows_in"] == ROWS
    assert result["duckdb_bare"]["distinct_ids"] == result["duckdb_dagster"]["rows_out"]
    assert result["parquet_floor"]["rows_in"] == ROWS
    assert result["kestra_first"]["rows_out"] == ROWS
    assert result["gx"]["failed"] == [] and result["gx"]["rows_validated"] == [ROWS, result["duckdb_core"]["rows_out"]]
    assert results["versions"]["postgresql_server"].startswith("PostgreSQL ")

    text = report.read_text()
    for target in ("DuckDB raw → silver ≤ 2.0× floor", "DuckDB raw → silver ≤ 1.3× bare DuckDB",
                   "unchanged re-run ≤ 0.5× floor", "PostgreSQL raw → silver ≤ 1.0× Kestra baseline",
                   "GX checks ≤ 1.0× floor", "peak RSS ≤ 1.5 GB", "Parquet month: DuckDB raw → silver ≤ 3.0×",
                   "raw → marts ≤ 2.0× raw → silver"):
        assert target in text
    assert not (work / "state").exists(), "state is removed unless --keep-state"


def test_the_bare_statement_gives_silvers_ids(tmp_path):
    """duckdb_bare is the reference for DuckDB's raw -> silver because it does the same typing and
    keying: on a clean month its ids are exactly the ids silver keeps."""
    path = write_month(YELLOW, "2019-01", ROWS, tmp_path / "source")
    bare = duckdb.connect()
    bare.execute(bare_sql(str(path)))
    bare_ids = {i for (i,) in bare.execute("SELECT unique_row_id FROM silver").fetchall()}
    assert bare.execute("SELECT count(*) FROM silver").fetchone()[0] == ROWS  # no dedupe

    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    warehouse.load_bronze(YELLOW, "2019-01", path.name, str(path))
    silver = warehouse.build_silver(YELLOW, "2019-01")
    assert silver.rows_quarantined == 0 and silver.duplicates_collapsed > 0
    assert {i for (i,) in warehouse.query("SELECT unique_row_id FROM silver.yellow_tripdata")} == bare_ids
