"""Re-running an unchanged month skips the reload and still leaves exactly one clean run's rows;
anything that makes the month differ (rows gone, the reload tag, another month written since)
reloads it."""

from __future__ import annotations

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, materialize

from taxi_platform.assets import ingest_assets
from taxi_platform.resources import build_warehouse, resources_from_env
from taxi_platform.settings import Settings
from tests.support.runs import failure_messages, table_digest

YELLOW = [a for a in ingest_assets if "yellow" in a.key.to_user_string()]
JAN = "yellow_tripdata_2019-01.csv.gz"
BRONZE, SILVER = AssetKey(["bronze", "yellow_tripdata"]), AssetKey(["silver", "yellow_tripdata"])


@pytest.fixture
def instance(platform_env):
    with DagsterInstance.get() as instance:
        yield instance


def run(instance, tags=None):
    result = materialize(YELLOW, partition_key="2019-01", instance=instance, tags=tags,
                         resources=resources_from_env(), raise_on_error=False)
    assert result.success, failure_messages(result)
    return {key: instance.get_latest_materialization_event(key).asset_materialization.metadata["unchanged"].value
            for key in (BRONZE, SILVER)}


def contents():
    return {t: table_digest(t) for t in ("bronze.yellow_tripdata", "silver.yellow_tripdata",
                                         "silver.yellow_tripdata_quarantine")}


@pytest.mark.slow
def test_an_unchanged_month_is_not_reloaded_and_its_rows_stay_those_of_one_clean_run(instance):
    assert run(instance) == {BRONZE: False, SILVER: False}
    clean = contents()
    assert run(instance) == {BRONZE: True, SILVER: True}
    assert contents() == clean
    silver = instance.get_latest_materialization_event(SILVER).asset_materialization.metadata
    assert silver["dagster/row_count"].value == 10_000 and silver["rows_in"].value == 10_000

    assert run(instance, tags={"taxi/reload": "true"}) == {BRONZE: False, SILVER: False}
    assert contents() == clean


@pytest.mark.slow
def test_a_month_missing_rows_is_reloaded_whole(instance):
    run(instance)
    clean = contents()
    warehouse = build_warehouse(Settings.from_env())
    warehouse.query("DELETE FROM silver.yellow_tripdata WHERE unique_row_id IN "
                    "(SELECT unique_row_id FROM silver.yellow_tripdata LIMIT 3)")
    assert run(instance) == {BRONZE: True, SILVER: False}  # bronze is whole; silver is not
    assert contents() == clean
    for landed in ("bronze.yellow_tripdata_landed_typed", "bronze.yellow_tripdata_landed_text"):
        warehouse.query(f"DELETE FROM {landed} WHERE filename = ?", [JAN])
    assert run(instance) == {BRONZE: False, SILVER: True}  # the same file again: silver is whole
    assert contents() == clean


def uniqueness(instance):
    """(run id, passed, metadata) of silver's latest unique_row_id_is_unique evaluation."""
    record = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(SILVER, "unique_row_id_is_unique"), limit=1)[0]
    evaluation = record.event.dagster_event.event_specific_data
    return record.run_id, evaluation.passed, {k: v.value for k, v in evaluation.metadata.items()}


@pytest.mark.slow
def test_an_unchanged_re_run_keeps_the_uniqueness_count_of_the_run_that_left_the_table_so(instance):
    run(instance)
    first, passed, metadata = uniqueness(instance)
    assert passed and metadata == {"duplicated_ids": 0}  # counted
    run(instance)
    second, passed, metadata = uniqueness(instance)
    assert second != first and passed and metadata == {"duplicated_ids": 0, "as_of_run": first}
    run(instance)
    assert uniqueness(instance)[2]["as_of_run"] == second  # each re-run stands on the one before
    run(instance, tags={"taxi/reload": "true"})  # rebuilt: counted again
    assert uniqueness(instance)[2] == {"duplicated_ids": 0}
