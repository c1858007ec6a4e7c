"""The cloud path as the schedules run it: the colour jobs (what the schedules, the landing sensor
and the publication sensor launch) on the BigQuery and GCS emulators, every check included: the
bronze gate and the silver suite validated inside BigQuery, a two-month single-run backfill, a
renamed column refused with DuckDB's message, and every month query reading only the month's
blocks.

What the emulator (bqemulator 1.4, GoogleSQL run on DuckDB through SQLGlot) cannot show: that
BigQuery prunes partitions and clustered blocks as the queries ask (tested here: every statement
filters on the clustering or partition column), its own cast rules (tests/unit/test_bigquery_sql.py),
and the bytes a real project is billed (the emulator reports none)."""

from __future__ import annotations

import re

import pytest
from dagster import AssetKey, DagsterInstance

from taxi_platform.resources import build_warehouse
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.settings import Settings
from taxi_platform.warehouse.bigquery import BigQueryWarehouseResource
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from tests.support.backends import REAL_YELLOW, load_month, silver_rows
from tests.support.runs import failure_messages, rewrite_csv

JAN, FEB = YELLOW.filename("2019-01"), YELLOW.filename("2019-02")
GATE, SILVER_SUITE = ("bronze/yellow_tripdata", "gx_bronze_suite"), ("silver/yellow_tripdata", "gx_silver_suite")


def run_job(instance, colour: str, month: str | None = None, months: tuple[str, str] | None = None):
    """The colour's job as a schedule (one month) or a single-run backfill (a range) launches it."""
    from taxi_platform.definitions import build_definitions

    job = build_definitions().resolve_job_def(f"{colour}_tripdata_job")
    if months:
        tags = {"dagster/asset_partition_range_start": months[0], "dagster/asset_partition_range_end": months[1]}
        return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False)
    return job.execute_in_process(partition_key=month, instance=instance, raise_on_error=False)


def evaluations(result) -> dict[tuple[str, str], object]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


@pytest.mark.slow
def test_the_colour_jobs_run_on_bigquery_with_the_gate_and_the_silver_suite_validated_in_bigquery(
        platform_env, bigquery_env, tlc_dir, mirror, tmp_path):
    mirror.add(write_month(GREEN, "2019-02", 400, tmp_path / "gen", seed=5), "green")
    with DagsterInstance.get() as instance:
        yellow = run_job(instance, "yellow", "2019-01")
        green = run_job(instance, "green", "2019-02")
    for result in (yellow, green):
        assert result.success, failure_messages(result)
        checks = evaluations(result)
        colour = "yellow" if result is yellow else "green"
        for asset, check in ((f"bronze/{colour}_tripdata", "gx_bronze_suite"),
                             (f"silver/{colour}_tripdata", "gx_silver_suite")):
            evaluation = checks[(asset, check)]
            assert evaluation.passed, evaluation.description
            assert evaluation.metadata["evaluated_expectations"].value > 0
        reconciled = checks[(f"silver/{colour}_tripdata", "row_reconciliation")]
        assert reconciled.passed, reconciled.description
        assert reconciled.metadata["file_rows"].value == reconciled.metadata["silver_accounted"].value > 0
    assert checks[("silver/green_tripdata", "gx_silver_suite")].metadata["rows_validated"].value > 0
    # silver's ids (and rows) are DuckDB's for the same file
    duck = DuckDBWarehouseResource(path=str(tmp_path / "reference.duckdb"))
    load_month(duck, YELLOW, "2019-01", tlc_dir / REAL_YELLOW)
    assert silver_rows(build_warehouse(Settings.from_env()), YELLOW) == silver_rows(duck, YELLOW)


@pytest.mark.slow
def test_a_two_month_single_run_backfill_of_the_yellow_job_loads_both_months_with_their_checks(
        platform_env, bigquery_env, mirror, tmp_path):
    mirror.add(write_month(YELLOW, "2019-02", 600, tmp_path / "gen", seed=3), "yellow")
    with DagsterInstance.get() as instance:
        result = run_job(instance, "yellow", months=("2019-01", "2019-02"))
    assert result.success, failure_messages(result)
    checks = evaluations(result)
    assert checks[GATE].passed and checks[SILVER_SUITE].passed
    assert "2019-01" in checks[GATE].metadata["months"].value and "2019-02" in checks[GATE].metadata["months"].value
    reconciled = checks[("silver/yellow_tripdata", "row_reconciliation")]
    assert reconciled.passed and reconciled.metadata["months_not_reconciled"].value == [], reconciled.description
    assert JAN in reconciled.description and FEB in reconciled.description
    counts = dict(build_warehouse(Settings.from_env()).query(
        "SELECT filename, COUNT(*) FROM silver.yellow_tripdata GROUP BY filename"))
    assert counts[JAN] == 10_000 and 0 < counts[FEB] <= 600


def _renamed(lines):
    return [lines[0].replace("fare_amount", "fare_amt"), *lines[1:]]


@pytest.mark.slow
def test_a_renamed_column_fails_the_bronze_gate_on_bigquery_with_duckdbs_message_and_keeps_the_month(
        platform_env, bigquery_env, mirror, monkeypatch):
    with DagsterInstance.get() as instance:
        assert run_job(instance, "yellow", "2019-01").success
        warehouse = build_warehouse(Settings.from_env())
        before = silver_rows(warehouse, YELLOW)
        path = mirror.root / "yellow" / JAN
        rewrite_csv(path, path, _renamed)
        refused = run_job(instance, "yellow", "2019-01")
    assert not refused.success
    (message,) = [m for m in failure_messages(refused) if "column contract" in m]
    assert silver_rows(warehouse, YELLOW) == before  # the month's earlier rows are intact
    # the same file on DuckDB: the same words
    monkeypatch.setenv("TAXI_WAREHOUSE", "duckdb")
    monkeypatch.setenv("TAXI_LAKE", "local")
    with DagsterInstance.ephemeral() as instance:
        on_duckdb = run_job(instance, "yellow", "2019-01")
    (duck_message,) = [m for m in failure_messages(on_duckdb) if "column contract" in m]
    headline = re.compile(r"^.*?does not match the yellow column contract[^\n]*", re.DOTALL)
    assert headline.search(message).group(0) == headline.search(duck_message).group(0)


_MONTH_FILTERS = ("filename =", "filename IN", "load_id =", "BETWEEN @first_day AND @last_day",
                  "BETWEEN @first AND @last", "WHERE month =")


@pytest.mark.slow
def test_every_month_query_on_bigquery_reads_only_the_months_partitions_or_clustered_blocks(
        platform_env, bigquery_env, monkeypatch):
    statements: list[str] = []
    run = BigQueryWarehouseResource._run

    def recording(self, sql, params=None, client=None):
        statements.append(sql)
        return run(self, sql, params, client)

    monkeypatch.setattr(BigQueryWarehouseResource, "_run", recording)
    with DagsterInstance.get() as instance:
        first = run_job(instance, "yellow", "2019-01")
        again = run_job(instance, "yellow", "2019-01")  # unchanged: only the counts that prove it
        silver_meta = instance.get_latest_materialization_event(
            AssetKey(["silver", "yellow_tripdata"])).asset_materialization.metadata
    assert first.success and again.success, failure_messages(first) + failure_messages(again)
    reads = [s for s in statements if re.search(r"\b(FROM|DELETE FROM|UPDATE)\s+\S*(yellow_tripdata)", s)
             and not s.lstrip().startswith(("CREATE", "ALTER", "INSERT INTO bronze.yellow_tripdata_landed"))]
    assert reads, "no month query was recorded"
    unfiltered = [s for s in reads if not any(f in s for f in _MONTH_FILTERS)]
    assert unfiltered == []
    assert "bytes_processed" in silver_meta  # the emulator reports 0; BigQuery the billed bytes
