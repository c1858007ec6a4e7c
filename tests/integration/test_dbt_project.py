"""The dbt project on its own, with real dbt on a real DuckDB file: its unit tests (staging renames,
revenue aggregation) pass and catch a wrong model, the manifest is prepared on a fresh clone and
re-parsed only when a file changes, and a project that does not parse fails with a clear error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from dagster_dbt import DbtProject

from taxi_platform.dbt_project import (
    DBT_PROJECT_DIR,
    DbtProjectError,
    dbt_executable,
    manifest_is_stale,
    prepare_manifest,
)
from taxi_platform.schemas import SCHEMAS

_SQL_TYPES = {"INTEGER": "INTEGER", "TIMESTAMP": "TIMESTAMP", "DOUBLE": "DOUBLE", "TEXT": "VARCHAR"}


def create_empty_silver(duckdb_path: Path) -> None:
    """The silver tables as the silver assets create them, with no rows."""
    with duckdb.connect(str(duckdb_path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS silver")
        for schema in SCHEMAS.values():
            typed = ", ".join(f'"{c.sql_name}" {_SQL_TYPES[c.type]}' for c in schema.columns)
            conn.execute(f"CREATE TABLE silver.{schema.table} "
                         f"(unique_row_id VARCHAR NOT NULL, filename VARCHAR NOT NULL, {typed})")


def dbt(args: list[str], duckdb_path: Path, target: Path, project_dir: Path = DBT_PROJECT_DIR):
    env = {**os.environ, "TAXI_DUCKDB_PATH": str(duckdb_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DBT_LOG_PATH": str(target)}
    env.pop("TAXI_WAREHOUSE", None)
    return subprocess.run([dbt_executable(), *args, "--no-use-colors", "--project-dir", str(project_dir),
                           "--profiles-dir", str(project_dir), "--target-path", str(target)],
                          check=False, cwd=project_dir, env=env, capture_output=True, text=True, timeout=600)


def copy_project(tmp_path: Path) -> Path:
    """A fresh clone of the dbt project: no target/, no logs/."""
    copy = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    return copy


def test_the_dbt_unit_tests_for_the_staging_renames_and_the_revenue_aggregation_pass(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    create_empty_silver(warehouse)
    # --empty builds every model with no rows: the unit tests need their inputs' columns.
    done = dbt(["build", "--empty"], warehouse, tmp_path / "target")
    assert done.returncode == 0, done.stdout[-4000:]
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    unit = {r["unique_id"].split(".")[-1]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert unit == {
        "stg_yellow_renames_columns_and_adds_constants": "pass",
        "stg_green_renames_columns_keeps_trip_type": "pass",
        "mart_sums_by_pickup_zone_month_and_service": "pass",
    }


def test_a_unit_test_fails_when_the_mart_groups_by_the_wrong_month(tmp_path):
    project = copy_project(tmp_path)
    mart = project / "models" / "marts" / "dm_monthly_zone_revenue.sql"
    mart.write_text(mart.read_text().replace("'pickup_datetime'", "'dropoff_datetime'"))
    warehouse = tmp_path / "warehouse.duckdb"
    create_empty_silver(warehouse)
    done = dbt(["build", "--empty", "--select", "+dm_monthly_zone_revenue"], warehouse, tmp_path / "target",
               project_dir=project)
    assert done.returncode != 0
    assert "mart_sums_by_pickup_zone_month_and_service" in done.stdout
    assert "actual differs from expected" in done.stdout


def test_the_manifest_is_prepared_on_a_fresh_clone_reused_while_current_and_a_parse_error_is_clear(tmp_path):
    project_dir = copy_project(tmp_path)
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    assert manifest_is_stale(project)  # a fresh clone has no target/
    manifest = prepare_manifest(project)
    assert manifest == project_dir / "target" / "manifest.json"
    nodes = json.loads(manifest.read_text())["nodes"]
    assert {"model.taxi_platform.fct_trips", "model.taxi_platform.dm_monthly_zone_revenue"} <= set(nodes)

    parsed_at = manifest.stat().st_mtime_ns
    assert not manifest_is_stale(project)
    prepare_manifest(project)  # current: not parsed again
    assert manifest.stat().st_mtime_ns == parsed_at

    broken = project_dir / "models" / "gold" / "dim_zones.sql"
    time.sleep(0.01)
    broken.write_text("select * from {{ ref('taxi_zone_lookup' }}\n")  # a Jinja syntax error
    assert manifest_is_stale(project)
    with pytest.raises(DbtProjectError) as raised:
        prepare_manifest(project)
    message = str(raised.value)
    assert "does not parse" in message and "dim_zones" in message
    assert "Traceback" not in message
    assert manifest.stat().st_mtime_ns == parsed_at, "a failed parse leaves the last good manifest"


