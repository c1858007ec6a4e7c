"""The cross-backend invariant: the same real month gives the same row counts and the same
set of unique_row_ids on every warehouse, through real Dagster runs chosen by environment
variables only (no asset knows the backend)."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from taxi_platform.assets import ingest_assets
from taxi_platform.resources import build_warehouse
from taxi_platform.schemas import YELLOW
from taxi_platform.settings import Settings
from tests.support.backends import REAL_YELLOW, silver_ids
from tests.support.reference import expected_silver_ids
from tests.support.runs import failure_messages, run_months

YELLOW_ASSETS = [a for a in ingest_assets if "yellow" in a.key.to_user_string()]


def _run_real_month(monkeypatch, env: dict[str, str]):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with DagsterInstance.get() as instance:
        result = run_months(instance, "2019-01", YELLOW_ASSETS)
    assert result.success, failure_messages(result)
    warehouse = build_warehouse(Settings.from_env())
    counts = {layer: warehouse.query(f"SELECT count(*) FROM {layer}.yellow_tripdata")[0][0]
              for layer in ("bronze", "silver")}
    return warehouse, counts


@pytest.mark.slow
def test_the_real_month_gives_the_same_counts_and_ids_on_duckdb_and_postgresql(
        platform_env, postgres_server, monkeypatch, tlc_dir):
    duck, duck_counts = _run_real_month(monkeypatch, {"TAXI_WAREHOUSE": "duckdb"})
    pg, pg_counts = _run_real_month(
        monkeypatch, {"TAXI_WAREHOUSE": "postgres", **postgres_server.env(postgres_server.create_database())})
    assert pg.name == "postgres" and duck.name == "duckdb"
    assert pg_counts == duck_counts == {"bronze": 10_000, "silver": 10_000}
    ids = silver_ids(pg, YELLOW)
    assert ids == silver_ids(duck, YELLOW) == set(expected_silver_ids(tlc_dir / REAL_YELLOW, YELLOW))
