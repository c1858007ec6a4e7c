"""The benchmark harness (benchmarks/, `make bench`) runs end to end on a tiny month: every
measurement it is asked for produces a run without error and the report has the targets table.
No timing is asserted: a benchmark's figures belong in benchmarks/RESULTS.md, not in a test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_quick_mode_measures_a_tiny_month_and_writes_the_report(tmp_path):
    work, report = tmp_path / "work", tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--rows", "3000",
         "--only", "floor,duckdb,rerun,gx,postgres,kestra", "--work-dir", str(work), "--output", str(report)],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    results = json.loads((work / "results.json").read_text())
    measured = results["measurements"]
    assert set(measured) == {"floor", "duckdb_dagster", "duckdb_core", "duckdb_rerun", "gx",
                             "pg_dagster", "kestra_first", "kestra_rerun"}
    for name, m in measured.items():
        (run,) = m["runs"]
        assert "error" not in run["result"], (name, run["result"])
        assert run["seconds"] > 0 and run["child"]["maxrss_bytes"] > 0
    for name in ("duckdb_dagster", "duckdb_core", "duckdb_rerun", "pg_dagster"):
        result = measured[name]["runs"][0]["result"]
        assert result["rows_in"] == 3000 and 0 < result["rows_out"] <= 3000, name
    assert measured["duckdb_rerun"]["runs"][0]["result"]["lake_unchanged"] is True
    assert measured["kestra_first"]["runs"][0]["result"]["rows_out"] == 3000
    assert measured["kestra_rerun"]["runs"][0]["result"]["rows_out"] == 3000  # the MERGE adds nothing
    assert measured["gx"]["runs"][0]["result"]["failed"] == []

    text = report.read_text()
    for target in ("DuckDB raw → silver ≤ 2.0× floor", "unchanged re-run ≤ 0.5× floor",
                   "PostgreSQL raw → silver ≤ 0.5× Kestra baseline", "GX checks ≤ 1.0× floor",
                   "peak RSS ≤ 1.5 GB"):
        assert target in text
    assert not (work / "state").exists(), "state is removed unless --keep-state"
