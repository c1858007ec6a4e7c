"""Raw to marts on PostgreSQL gives what it gives on DuckDB: the real January 2019 month through
every asset and check of the code location (ingest, GX checks, dbt seeds, staging, gold and the
mart), once per warehouse, chosen by environment variables only."""

from __future__ import annotations

import pytest

from tests.support.marts import raw_to_marts

_DUCKDB: list = []  # the DuckDB warehouse, fct_trips and mart of the first test


@pytest.mark.slow
def test_a_real_month_from_raw_to_marts_on_postgresql_equals_the_same_month_on_duckdb(
        platform_env, postgres_server, monkeypatch):
    if not _DUCKDB:  # the same for both PostgreSQL versions: run once
        _DUCKDB.extend(raw_to_marts(monkeypatch, {"TAXI_WAREHOUSE": "duckdb"}))
    duck, duck_trips, duck_mart = _DUCKDB
    pg, pg_trips, pg_mart = raw_to_marts(
        monkeypatch, {"TAXI_WAREHOUSE": "postgres", **postgres_server.env(postgres_server.create_database())})
    assert (duck.name, pg.name) == ("duckdb", "postgres")
    assert len(pg_trips) == 10_000 + 8  # the real yellow month and the real green head
    assert pg_trips == duck_trips
    assert sum(row[5] for row in pg_mart) == 10_008
    assert pg_mart == duck_mart
