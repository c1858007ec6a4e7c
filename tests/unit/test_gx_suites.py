"""The GX suites follow the column contracts and the severity rule, the committed gx/ is exactly
what `make gx-suites` writes, and the asset checks are wired as the issue asks."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from dagster import AssetKey

from taxi_platform.checks import all_checks
from taxi_platform.checks.gx_context import GX_DIR, PROJECT_ROOT
from taxi_platform.checks.gx_runner import FailedExpectation
from taxi_platform.checks.gx_suites import (
    BY_MONTH,
    WHOLE_TABLE,
    all_suites,
    bronze_suite,
    gold_suite,
    mart_suite,
    silver_suite,
    write_context,
)
from taxi_platform.partitions import all_colours_partitions, partitions_for
from taxi_platform.schemas import GREEN, SCHEMAS, YELLOW
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from taxi_platform.warehouse.postgres import PostgresWarehouseResource


@pytest.mark.parametrize("schema", [YELLOW, GREEN], ids=lambda s: s.colour)
def test_the_bronze_gate_validates_one_landed_load_before_it_replaces_the_month(schema):
    suite = bronze_suite(schema)
    assert (suite.asset_name, suite.batch) == (f"bronze.{schema.table}_landed", "by_load")
    regex = {r.kwargs["column"] for r in suite.rules if r.type == "ExpectColumnValuesToMatchRegex"}
    assert regex == {schema.pickup, schema.dropoff}
    assert all(r.severity == "critical" for r in suite.rules)  # every rule can refuse the file


@pytest.mark.parametrize("schema", [YELLOW, GREEN], ids=lambda s: s.colour)
def test_the_silver_suite_bounds_pickups_by_the_partition_month_and_checks_the_key(schema):
    rules = silver_suite(schema).rules
    pickup = [r for r in rules if r.kwargs.get("column") == schema.pickup]
    assert [r.kwargs["min_value"] for r in pickup] == [{"$PARAMETER": "month_start"}]
    assert pickup[0].kwargs["max_value"] == {"$PARAMETER": "month_end"} and pickup[0].kwargs["strict_max"]
    key_rules = {r.type for r in rules if r.kwargs.get("column") == "unique_row_id"}
    assert key_rules == {"ExpectColumnValuesToNotBeNull"}


@pytest.mark.parametrize("schema", [YELLOW, GREEN], ids=lambda s: s.colour)
def test_unique_row_id_uniqueness_is_the_silver_assets_own_check_on_the_whole_table_not_the_suites(schema):
    # The suite does not count duplicates again for one month (a GROUP BY over millions of md5
    # strings, half the time of both suites): the silver asset checks the whole table every run.
    from taxi_platform.assets import ingest_assets

    (silver,) = [a for a in ingest_assets if AssetKey(["silver", schema.table]) in a.keys]
    assert "unique_row_id_is_unique" in {spec.name for spec in silver.check_specs}
    assert not [r for r in silver_suite(schema).rules if "Unique" in r.type]


def test_every_mostly_rule_is_a_warning_and_every_exact_rule_is_critical():
    for suite in all_suites():
        for rule in suite.rules:
            expected = "warning" if "mostly" in rule.kwargs else "critical"
            assert rule.severity == expected, (suite.name, rule)


def test_the_committed_suites_carry_the_rules_and_severities_of_the_code():
    for suite in all_suites():
        stored = json.loads((GX_DIR / "expectations" / f"{suite.name}.json").read_text())
        assert [(e["kwargs"].get("column"), e["severity"]) for e in stored["expectations"]] == [
            (r.kwargs.get("column"), r.severity) for r in suite.rules], suite.name
        checkpoint = json.loads((GX_DIR / "checkpoints" / f"{suite.name}.json").read_text())
        definition = json.loads((GX_DIR / "validation_definitions" / f"{suite.name}.json").read_text())
        assert [v["id"] for v in checkpoint["validation_definitions"]] == [definition["id"]]
        assert definition["suite"]["id"] == stored["id"]


def test_the_checkpoints_count_unexpected_rows_without_fetching_examples_except_the_sql_rule():
    # Examples of a passing expectation would cost a scan of the batch each, to find nothing:
    # the runner fetches examples for the failed expectations only (gx_runner._with_examples).
    for suite in all_suites():
        checkpoint = json.loads((GX_DIR / "checkpoints" / f"{suite.name}.json").read_text())
        if suite.result_format == "COMPLETE":  # the mart: the rows its SQL found are the result
            assert checkpoint["result_format"]["result_format"] == "COMPLETE", suite.name
        else:
            assert checkpoint["result_format"] == {"result_format": "BASIC", "partial_unexpected_count": 0}, \
                suite.name


def test_make_gx_suites_on_the_committed_context_changes_nothing(tmp_path):
    shutil.copytree(GX_DIR, tmp_path / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "gx").rglob("*") if p.is_file()}
    changed = write_context(tmp_path, scratch_dir=tmp_path / "scratch", log=lambda _: None)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "gx").rglob("*")
             if p.is_file() and "uncommitted" not in p.parts}
    assert changed == [], f"gx/ is stale: run `make gx-suites` and commit ({changed})"
    assert after == before


def test_the_gx_checks_are_one_per_suite_per_asset_partitioned_like_their_asset_and_only_the_bronze_gate_blocks():
    from taxi_platform.assets import ingest_assets

    specs = {(spec.asset_key, spec.name): spec for check in all_checks for spec in check.check_specs}
    specs.update({(spec.asset_key, spec.name): spec for a in ingest_assets for spec in a.check_specs})
    for colour in SCHEMAS:
        bronze = specs[(AssetKey(["bronze", f"{colour}_tripdata"]), "gx_bronze_suite")]
        silver = specs[(AssetKey(["silver", f"{colour}_tripdata"]), "gx_silver_suite")]
        assert bronze.blocking and not silver.blocking
        assert silver.partitions_def == partitions_for(colour)
    gold = specs[(AssetKey(["gold", "fct_trips"]), "gx_gold_suite")]
    mart = specs[(AssetKey(["marts", "dm_monthly_zone_revenue"]), "gx_marts_suite")]
    assert gold.partitions_def == all_colours_partitions() and mart.partitions_def is None
    assert not gold.blocking and not mart.blocking
    assert len([name for _, name in specs if name.startswith("gx_")]) == len(all_suites())


def test_the_gold_suite_checks_the_grain_of_fct_trips_on_the_partitions_rows():
    suite = gold_suite()
    rules = {r.type: r for r in suite.rules}
    assert rules["ExpectCompoundColumnsToBeUnique"].kwargs == {"column_list": ["service_type", "trip_id"]}
    assert rules["ExpectColumnValuesToNotBeNull"].kwargs == {"column": "trip_id"}
    assert all(r.severity == "critical" for r in suite.rules)
    assert (suite.batch, suite.asset_name) == (BY_MONTH, "gold.fct_trips")
    assert "FROM gold.fct_trips" in suite.query and "AS partition_month" in suite.query


def test_a_rows_partition_month_is_the_month_of_its_file_so_a_batch_is_exactly_the_months_two_files():
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA gold")
        conn.execute("CREATE TABLE gold.fct_trips AS SELECT * FROM (VALUES "
                     "('yellow_tripdata_2019-01.csv.gz'), ('green_tripdata_2019-01.csv.gz'), "
                     "('yellow_tripdata_2019-02.csv.gz'), ('green_tripdata_2020-01.csv.gz')) AS t(filename)")
        rows = conn.execute(f"SELECT filename FROM ({gold_suite().query}) AS b "
                            "WHERE partition_month = '2019-01' ORDER BY filename").fetchall()
    assert rows == [("green_tripdata_2019-01.csv.gz",), ("yellow_tripdata_2019-01.csv.gz",)]


def _reconcile(mart_rows, yellow_rows, green_rows) -> list[tuple]:
    """The mart suite's SQL rule, run in DuckDB on tiny tables."""
    (rule,) = [r for r in mart_suite().rules if r.type == "UnexpectedRowsExpectation"]
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts; CREATE SCHEMA silver")
        conn.execute("CREATE TABLE marts.dm_monthly_zone_revenue (revenue_zone VARCHAR, revenue_month DATE, "
                     "service_type VARCHAR, revenue_monthly_total_amount DOUBLE, total_monthly_trips BIGINT)")
        conn.execute("CREATE TABLE silver.yellow_tripdata (tpep_pickup_datetime TIMESTAMP, total_amount DOUBLE)")
        conn.execute("CREATE TABLE silver.green_tripdata (lpep_pickup_datetime TIMESTAMP, total_amount DOUBLE)")
        for table, rows in (("marts.dm_monthly_zone_revenue", mart_rows), ("silver.yellow_tripdata", yellow_rows),
                            ("silver.green_tripdata", green_rows)):
            if rows:
                marks = ", ".join("?" for _ in rows[0])
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        query = rule.kwargs["unexpected_rows_query"].format(batch="marts.dm_monthly_zone_revenue")
        return [(str(r[0]), *r[1:4]) for r in conn.execute(query).fetchall()]


def test_the_mart_reconciliation_returns_exactly_the_months_whose_trips_or_totals_differ_from_silver():
    yellow = [("2019-01-03 10:00:00", 10.0), ("2019-01-20 11:00:00", 5.5), ("2018-12-31 23:59:00", 7.25)]
    green = [("2019-01-05 09:00:00", 3.0)]
    mart = [("Zone A", "2019-01-01", "Yellow", 10.0, 1), ("Zone B", "2019-01-01", "Yellow", 5.5, 1),
            ("Zone A", "2018-12-01", "Yellow", 7.25, 1), ("Zone C", "2019-01-01", "Green", 3.0, 1)]
    assert _reconcile(mart, yellow, green) == []
    # a mart total off by two cents, a month only silver has, a trip count off
    mart[1] = ("Zone B", "2019-01-01", "Yellow", 5.52, 1)
    mart[3] = ("Zone C", "2019-01-01", "Green", 3.0, 2)
    green.append(("2019-02-01 00:00:00", 4.0))
    assert _reconcile(mart, yellow, green) == [
        ("2019-01-01", "Green", 2, 1), ("2019-01-01", "Yellow", 2, 2), ("2019-02-01", "Green", None, 1)]


def test_the_mart_is_validated_whole_and_its_checkpoint_returns_the_mismatching_rows():
    suite = mart_suite()
    assert (suite.batch, suite.query, suite.result_format) == (WHOLE_TABLE, None, "COMPLETE")
    (rule,) = [r for r in suite.rules if r.type == "UnexpectedRowsExpectation"]
    query = rule.kwargs["unexpected_rows_query"]
    assert "{batch}" in query and "silver.yellow_tripdata" in query and "silver.green_tripdata" in query
    assert rule.severity == "critical"
    checkpoint = json.loads((GX_DIR / "checkpoints" / f"{suite.name}.json").read_text())
    assert checkpoint["result_format"]["result_format"] == "COMPLETE"


def test_the_embedded_warehouse_is_validated_read_only_through_the_gx_duckdb_dialect(tmp_path):
    url = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"), memory_limit="1GB").gx_url()
    assert url == f"duckdb+taxi_gx:///{tmp_path}/w.duckdb?access_mode=read_only&memory_limit=1GB"
    assert PROJECT_ROOT / "gx" == GX_DIR


def test_a_postgresql_warehouse_is_validated_through_psycopg2_with_its_dsn_or_the_pg_variables():
    assert PostgresWarehouseResource(dsn="host=db port=5433 dbname=taxi").gx_url() == (
        "postgresql+psycopg2:///?dsn=host%3Ddb%20port%3D5433%20dbname%3Dtaxi&application_name=taxi_platform_gx")
    assert PostgresWarehouseResource().gx_url() == "postgresql+psycopg2:///?application_name=taxi_platform_gx"


def test_a_failed_expectation_message_names_the_rule_the_share_the_allowance_and_examples():
    failure = FailedExpectation(
        "expect_column_values_to_be_between", "fare_amount", "warning", "fare_amount is not negative.",
        unexpected_count=500, unexpected_percent=25.0, unexpected_values=[-7.5, -12.0], mostly=0.99)
    assert failure.message == (
        "expect_column_values_to_be_between on fare_amount failed (fare_amount is not negative): "
        "500 unexpected rows (25.00%), allowed at most 1.0%; e.g. -7.5, -12.0")
    assert failure.as_json()["unexpected_values"] == [-7.5, -12.0]


def test_data_docs_compile_each_template_once_per_process_not_once_per_page(monkeypatch):
    from great_expectations.render.view.view import DefaultJinjaView
    from jinja2 import Environment

    from taxi_platform.checks.gx_context import _share_compiled_templates

    _share_compiled_templates()
    compiled, compile_ = [], Environment.compile

    def counted(self, source, name=None, *args, **kwargs):
        compiled.append(name)
        return compile_(self, source, name, *args, **kwargs)

    monkeypatch.setattr(Environment, "compile", counted)
    first = DefaultJinjaView()._get_template("bullet_list.j2")  # GX makes a view (an environment) per page
    before = len(compiled)
    second = DefaultJinjaView()._get_template("bullet_list.j2")
    assert len(compiled) == before  # the second page's environment compiled nothing
    assert second.environment is not first.environment
    assert second.render(content_block={"bullet_list": ["a"]}) == first.render(content_block={"bullet_list": ["a"]})
