"""The GX suites follow the column contracts and the severity rule, the committed gx/ is exactly
what `make gx-suites` writes, and the asset checks are wired as the issue asks."""

from __future__ import annotations

import json
import shutil

import pytest
from dagster import AssetKey

from taxi_platform.checks import all_checks
from taxi_platform.checks.gx_context import GX_DIR, PROJECT_ROOT, warehouse_url
from taxi_platform.checks.gx_runner import FailedExpectation
from taxi_platform.checks.gx_suites import all_suites, bronze_suite, silver_suite, write_context
from taxi_platform.partitions import monthly_partitions
from taxi_platform.resources.duckdb_warehouse import DuckDBWarehouseResource
from taxi_platform.resources.warehouse import WarehouseResource
from taxi_platform.schemas import GREEN, SCHEMAS, YELLOW


@pytest.mark.parametrize("schema", [YELLOW, GREEN], ids=lambda s: s.colour)
def test_the_bronze_suite_expects_the_contract_columns_in_file_order_plus_filename(schema):
    (rule,) = [r for r in bronze_suite(schema).rules if r.type == "ExpectTableColumnsToMatchOrderedList"]
    assert rule.kwargs["column_list"] == [*schema.sql_names, "filename"]


@pytest.mark.parametrize("schema", [YELLOW, GREEN], ids=lambda s: s.colour)
def test_the_silver_suite_bounds_pickups_by_the_partition_month_and_checks_the_key(schema):
    rules = silver_suite(schema).rules
    pickup = [r for r in rules if r.kwargs.get("column") == schema.pickup]
    assert [r.kwargs["min_value"] for r in pickup] == [{"$PARAMETER": "month_start"}]
    assert pickup[0].kwargs["max_value"] == {"$PARAMETER": "month_end"} and pickup[0].kwargs["strict_max"]
    key_rules = {r.type for r in rules if r.kwargs.get("column") == "unique_row_id"}
    assert key_rules == {"ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeUnique"}


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


def test_make_gx_suites_on_the_committed_context_changes_nothing(tmp_path):
    shutil.copytree(GX_DIR, tmp_path / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "gx").rglob("*") if p.is_file()}
    changed = write_context(tmp_path, scratch_dir=tmp_path / "scratch", log=lambda _: None)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "gx").rglob("*")
             if p.is_file() and "uncommitted" not in p.parts}
    assert changed == [], f"gx/ is stale: run `make gx-suites` and commit ({changed})"
    assert after == before


def test_the_gx_checks_are_one_per_suite_per_asset_partitioned_and_only_bronze_blocks():
    specs = {(spec.asset_key, spec.name): spec for check in all_checks for spec in check.check_specs}
    for colour in SCHEMAS:
        bronze = specs[(AssetKey(["bronze", f"{colour}_tripdata"]), "gx_bronze_suite")]
        silver = specs[(AssetKey(["silver", f"{colour}_tripdata"]), "gx_silver_suite")]
        assert bronze.blocking and not silver.blocking
        assert bronze.partitions_def == silver.partitions_def == monthly_partitions
    assert len([name for _, name in specs if name.startswith("gx_")]) == len(all_suites())


def test_the_embedded_warehouse_is_validated_read_only_through_the_gx_duckdb_dialect(tmp_path):
    url = warehouse_url(DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"), memory_limit="1GB"))
    assert url == f"duckdb+taxi_gx:///{tmp_path}/w.duckdb?access_mode=read_only&memory_limit=1GB"
    assert PROJECT_ROOT / "gx" == GX_DIR


def test_a_warehouse_the_checks_do_not_know_yet_says_where_to_add_it():
    class Elsewhere(WarehouseResource):
        @property
        def name(self) -> str:
            return "bigquery"

    with pytest.raises(NotImplementedError, match="gx_context.py:warehouse_url"):
        warehouse_url(Elsewhere())


def test_a_failed_expectation_message_names_the_rule_the_share_the_allowance_and_examples():
    failure = FailedExpectation(
        "expect_column_values_to_be_between", "fare_amount", "warning", "fare_amount is not negative.",
        unexpected_count=500, unexpected_percent=25.0, unexpected_values=[-7.5, -12.0], mostly=0.99)
    assert failure.message == (
        "expect_column_values_to_be_between on fare_amount failed (fare_amount is not negative): "
        "500 unexpected rows (25.00%), allowed at most 1.0%; e.g. -7.5, -12.0")
    assert failure.as_json()["unexpected_values"] == [-7.5, -12.0]
