"""Raw to marts on the local BigQuery emulator: one Dagster run of January 2019 through every
asset and check (ingest with TAXI_WAREHOUSE=bigquery TAXI_LAKE=gcs, the GX suites validated in
BigQuery, then the dbt seeds, staging views, gold/fct_trips and the mart on dbt's ``bigquery``
target, dbt tests as checks) holds in gold and the mart what the same run gives on DuckDB.

profiles.yml points the bigquery target at TAXI_BIGQUERY_API_ENDPOINT when it is set
(dbt-bigquery's ``api_endpoint``), with a placeholder oauth token the emulator does not check."""

from __future__ import annotations

import pytest

from tests.support.marts import raw_to_marts


@pytest.mark.slow
def test_raw_to_marts_through_dagster_on_bigquery_equals_duckdb(platform_env, bigquery_env, monkeypatch):
    # Every check, as on the other warehouses: dbt's tests and the GX suites, validated in BigQuery.
    bq, bq_trips, bq_mart = raw_to_marts(monkeypatch, {"TAXI_WAREHOUSE": "bigquery"})
    duck, duck_trips, duck_mart = raw_to_marts(monkeypatch, {"TAXI_WAREHOUSE": "duckdb", "TAXI_LAKE": "local"})
    assert (bq.name, duck.name) == ("bigquery", "duckdb")
    assert len(bq_trips) == 10_000 + 8  # the real yellow month and the real green head
    assert bq_trips == duck_trips
    assert bq_mart == duck_mart and sum(row[5] for row in bq_mart) == 10_008
