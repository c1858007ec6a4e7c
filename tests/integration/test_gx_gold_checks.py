"""The gold and mart GX suites as asset checks in real Dagster runs on a real DuckDB file, after
real dbt builds: the real January 2019 (yellow and green) passes both; a duplicate trip in
gold/fct_trips fails the gold check, and a mart that no longer adds up to silver (its total
altered, or a silver trip changed after the mart was built) fails the reconciliation, each at
ERROR with a message that names what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    materialize,
)

from taxi_platform.assets import ingest_assets
from taxi_platform.assets.dbt import dbt_asset_defs, dbt_trip_and_mart_assets
from taxi_platform.checks import all_checks
from taxi_platform.resources import build_warehouse, resources_from_env
from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.settings import DEFAULT_DATA_DOCS_URL, Settings
from tests.support.runs import failure_messages

FCT, MART = AssetKey(["gold", "fct_trips"]), AssetKey(["marts", "dm_monthly_zone_revenue"])
GOLD_CHECK, MART_CHECK = "gold/fct_trips:gx_gold_suite", "marts/dm_monthly_zone_revenue:gx_marts_suite"
GOLD_CHECKS = [next(c for c in all_checks if any(k.asset_key == key for k in c.check_keys)) for key in (FCT, MART)]
FILES = f"{YELLOW.filename('2019-01')}, {GREEN.filename('2019-01')}"
TRIPS = 10_000 + 8  # the real yellow month and the real green head


@pytest.fixture
def instance(platform_env):
    with DagsterInstance.get() as instance:  # the fixture's DAGSTER_HOME
        yield instance


_JANUARY: dict[str, Path] = {}  # the copy of a built January, for the tests of this module


@pytest.fixture
def january(platform_env, tmp_path_factory):
    """The data dir (DuckDB, lake, GX results) and DAGSTER_HOME after raw to marts for 2019-01:
    built by the first test that asks, then copied for the others (a build takes minutes and
    each test only tampers with its result). Yields the instance."""
    if "copy" not in _JANUARY:
        with DagsterInstance.get() as instance:
            build_january(instance)
        copy = tmp_path_factory.mktemp("january")
        shutil.copytree(platform_env.data_dir, copy / "data")
        shutil.copytree(platform_env.dagster_home, copy / "dagster_home")
        _JANUARY["copy"] = copy
    else:
        for built, here in (("data", platform_env.data_dir), ("dagster_home", platform_env.dagster_home)):
            shutil.rmtree(here, ignore_errors=True)
            shutil.copytree(_JANUARY["copy"] / built, here)
    with DagsterInstance.get() as instance:
        yield instance


def warehouse():
    return build_warehouse(Settings.from_env())


def evaluations(result) -> dict[str, object]:
    """The GX checks of gold and the mart (the bronze gate of the run's months is bronze's)."""
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()
            if e.check_name.startswith("gx_") and e.asset_key in (FCT, MART)}


def build_january(instance):
    """raw to marts for 2019-01 with the gold and mart GX checks, in one real run."""
    result = materialize([*ingest_assets, *dbt_asset_defs, *GOLD_CHECKS], partition_key="2019-01",
                         instance=instance, resources=resources_from_env(), raise_on_error=False)
    assert result.success, failure_messages(result)
    return result


def run_checks_only(instance):
    """The gold and mart GX checks alone, as "Execute checks" runs them (no dbt run that would
    rebuild what a test seeded): the gold one for the partition 2019-01, the mart one whole.
    The partition goes in as the run's tag: with no asset selected, `partition_key=` finds no
    partitions definition to validate it against."""
    checks = {}
    for asset, check, tags in ((dbt_trip_and_mart_assets, GOLD_CHECKS[0], {"dagster/partition": "2019-01"}),
                               (dbt_trip_and_mart_assets, GOLD_CHECKS[1], None)):
        result = materialize([asset, check], selection=AssetSelection.checks(check), tags=tags,
                             instance=instance, resources=resources_from_env(), raise_on_error=False)
        assert not result.get_asset_materialization_events(), "only the check ran"
        checks.update(evaluations(result))
    assert set(checks) == {GOLD_CHECK, MART_CHECK}
    return checks


def assert_data_docs(meta, platform_env):
    docs = meta["data_docs"].value  # served by `taxi-platform docs`, a link a browser follows
    assert docs.startswith(f"{DEFAULT_DATA_DOCS_URL}/validations/")
    assert (platform_env.data_dir / "gx_data_docs" / docs.removeprefix(DEFAULT_DATA_DOCS_URL + "/")).is_file()


def test_a_clean_real_month_passes_the_gold_and_mart_checks_with_their_metadata(instance, platform_env):
    checks = evaluations(build_january(instance))
    assert set(checks) == {GOLD_CHECK, MART_CHECK}

    gold = checks[GOLD_CHECK]
    assert gold.passed and gold.severity == AssetCheckSeverity.ERROR, gold.description
    assert gold.partition == "2019-01"
    meta = gold.metadata
    assert meta["files"].value == FILES and meta["rows_validated"].value == TRIPS
    assert meta["table"].value == "gold.fct_trips" and meta["failed_expectations"].value == []
    assert meta["evaluated_expectations"].value == meta["successful_expectations"].value == 4
    assert_data_docs(meta, platform_env)
    assert gold.description == f"gold_fct_trips: all 4 expectations passed on {FILES}"

    mart = checks[MART_CHECK]
    assert mart.passed, mart.description
    meta = mart.metadata
    (mart_rows,), = warehouse().query("SELECT count(*) FROM marts.dm_monthly_zone_revenue")
    assert meta["rows_validated"].value == mart_rows > 0 and "file" not in meta and "files" not in meta
    assert meta["evaluated_expectations"].value == meta["successful_expectations"].value == 2
    assert_data_docs(meta, platform_env)


def test_a_duplicated_trip_in_fct_trips_fails_the_gold_check_at_error_naming_the_trip(january):
    instance = january
    (trip_id,), = warehouse().query(
        "SELECT trip_id FROM gold.fct_trips WHERE service_type = 'Green' ORDER BY trip_id LIMIT 1")
    warehouse().query("INSERT INTO gold.fct_trips SELECT * FROM gold.fct_trips WHERE trip_id = ? "
                      "AND service_type = 'Green'", [trip_id])

    checks = run_checks_only(instance)

    gold = checks[GOLD_CHECK]
    assert not gold.passed and gold.severity == AssetCheckSeverity.ERROR
    (failed,) = gold.metadata["failed_expectations"].value
    assert (failed["expectation"], failed["column"], failed["severity"]) == (
        "expect_compound_columns_to_be_unique", "service_type, trip_id", "critical")
    assert failed["unexpected_count"] == 2 and failed["month"] == "2019-01"
    assert failed["unexpected_values"][0] == {"service_type": "Green", "trip_id": trip_id}
    assert gold.description.startswith(f"gold_fct_trips: 1 expectation(s) failed on {FILES}. "
                                       "expect_compound_columns_to_be_unique on service_type, trip_id failed")
    assert "No (service_type, trip_id) appears twice in the month" in gold.description
    assert "2 unexpected rows" in gold.description and trip_id in gold.description
    assert gold.metadata["rows_validated"].value == TRIPS + 1 and gold.partition == "2019-01"
    # the mart was built before the duplicate: it still adds up to silver
    assert checks[MART_CHECK].passed, checks[MART_CHECK].description


def _mismatch(check) -> dict:
    assert not check.passed and check.severity == AssetCheckSeverity.ERROR
    (failed,) = check.metadata["failed_expectations"].value
    assert (failed["expectation"], failed["severity"]) == ("unexpected_rows_expectation", "critical")
    assert failed["observed_value"] == failed["unexpected_count"] == 1
    assert "unexpected_rows_expectation failed (Per revenue_month and service_type" in check.description
    assert "1 unexpected rows" in check.description
    (row,) = failed["unexpected_values"]
    return row


def test_an_altered_mart_total_fails_the_reconciliation_at_error_naming_the_month(january):
    instance = january
    (silver_total,), = warehouse().query(
        "SELECT sum(total_amount) FROM silver.yellow_tripdata "
        "WHERE tpep_pickup_datetime >= '2019-01-01' AND tpep_pickup_datetime < '2019-02-01'")
    warehouse().query("UPDATE marts.dm_monthly_zone_revenue SET revenue_monthly_total_amount = "
                      "revenue_monthly_total_amount + 0.02 WHERE revenue_zone = ("
                      "SELECT min(revenue_zone) FROM marts.dm_monthly_zone_revenue WHERE service_type = 'Yellow' "
                      "AND revenue_month = DATE '2019-01-01') AND service_type = 'Yellow' "
                      "AND revenue_month = DATE '2019-01-01'")

    checks = run_checks_only(instance)

    assert checks[GOLD_CHECK].passed, checks[GOLD_CHECK].description
    row = _mismatch(checks[MART_CHECK])
    assert (row["revenue_month"], row["service_type"]) == ("2019-01-01", "Yellow")
    assert row["mart_trips"] == row["silver_trips"]
    assert row["silver_total_amount"] == pytest.approx(silver_total)
    assert row["mart_total_amount"] == pytest.approx(silver_total + 0.02)
    assert "'revenue_month': '2019-01-01', 'service_type': 'Yellow'" in checks[MART_CHECK].description


def test_silver_trips_changed_after_the_mart_was_built_fail_the_reconciliation_naming_each_month(january):
    instance = january
    # after the mart: a green trip's total gains 10 USD, a yellow trip disappears from silver
    (green_id, green_month), = warehouse().query(
        "SELECT unique_row_id, CAST(date_trunc('month', lpep_pickup_datetime) AS DATE) "
        "FROM silver.green_tripdata ORDER BY unique_row_id LIMIT 1")
    (yellow_id, yellow_month), = warehouse().query(
        "SELECT unique_row_id, CAST(date_trunc('month', tpep_pickup_datetime) AS DATE) "
        "FROM silver.yellow_tripdata ORDER BY unique_row_id LIMIT 1")
    warehouse().query("UPDATE silver.green_tripdata SET total_amount = total_amount + 10 WHERE unique_row_id = ?",
                      [green_id])
    warehouse().query("DELETE FROM silver.yellow_tripdata WHERE unique_row_id = ?", [yellow_id])

    checks = run_checks_only(instance)

    assert checks[GOLD_CHECK].passed  # gold is checked against its own grain, not against silver
    mart = checks[MART_CHECK]
    assert not mart.passed and mart.severity == AssetCheckSeverity.ERROR
    (failed,) = mart.metadata["failed_expectations"].value
    assert failed["observed_value"] == failed["unexpected_count"] == 2
    rows = {(r["revenue_month"], r["service_type"]): r for r in failed["unexpected_values"]}
    assert set(rows) == {(green_month.isoformat(), "Green"), (yellow_month.isoformat(), "Yellow")}
    green, yellow = rows[(green_month.isoformat(), "Green")], rows[(yellow_month.isoformat(), "Yellow")]
    assert green["mart_trips"] == green["silver_trips"]
    assert green["silver_total_amount"] == pytest.approx(green["mart_total_amount"] + 10)
    assert yellow["silver_trips"] == yellow["mart_trips"] - 1
    assert "2 unexpected rows" in mart.description and "'service_type': 'Green'" in mart.description
