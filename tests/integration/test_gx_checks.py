"""The GX suites as asset checks in real Dagster runs: results on the assets with their metadata,
the bronze gate blocking silver for a bad month while other months go through, and the checks
leaving the DuckDB file to the next step. (tests/e2e/test_cli.py runs the same checks through the
CLI, where every step is its own process.)"""

from __future__ import annotations

import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, materialize

from taxi_platform.assets import ingest_assets
from taxi_platform.checks import all_checks
from taxi_platform.resources import resources_from_env
from taxi_platform.schemas import YELLOW
from taxi_platform.settings import DEFAULT_DATA_DOCS_URL
from tests.support.runs import rewrite_csv, table_digest

REAL = "yellow_tripdata_2019-01.csv.gz"
PICKUP = YELLOW.sql_names.index("tpep_pickup_datetime")
BRONZE, SILVER = AssetKey(["bronze", "yellow_tripdata"]), AssetKey(["silver", "yellow_tripdata"])


@pytest.fixture
def instance(platform_env):
    with DagsterInstance.get() as instance:  # the fixture's DAGSTER_HOME
        yield instance


def _run_yellow(instance, month):
    selection = [a for a in ingest_assets if "yellow" in a.key.to_user_string()]
    checks = [c for c in all_checks if any(k.asset_key in (BRONZE, SILVER) for k in c.check_keys)]
    return materialize([*selection, *checks], partition_key=month, instance=instance,
                       resources=resources_from_env(), raise_on_error=False)


def _gx_evaluations(events) -> dict[str, object]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in events
            if e.check_name.startswith("gx_")}


def _silver_partitions(instance) -> set[str]:
    records = instance.fetch_materializations(SILVER, limit=100).records
    return {r.partition_key for r in records}


def test_a_clean_real_month_passes_both_gx_checks_with_their_metadata_in_a_real_run(instance, platform_env):
    result = _run_yellow(instance, "2019-01")
    assert result.success
    gx = _gx_evaluations(result.get_asset_check_evaluations())
    assert set(gx) == {"bronze/yellow_tripdata:gx_bronze_suite", "silver/yellow_tripdata:gx_silver_suite"}
    for evaluation in gx.values():
        assert evaluation.passed, evaluation.description
        meta = evaluation.metadata
        assert meta["file"].value == REAL and meta["rows_validated"].value == 10_000
        assert meta["failed_expectations"].value == []
        assert meta["evaluated_expectations"].value == meta["successful_expectations"].value > 0
        docs = meta["data_docs"].value  # served by `taxi-platform docs`, a link a browser follows
        assert docs.startswith(f"{DEFAULT_DATA_DOCS_URL}/validations/")
        assert (platform_env.data_dir / "gx_data_docs" / docs.removeprefix(DEFAULT_DATA_DOCS_URL + "/")).is_file()
    assert "2019-01" in _silver_partitions(instance)


def _with_utc_offsets(lines):
    """Every pickup written with a UTC offset: DuckDB reads it as a timestamp (so bronze lands
    the month) but silently drops the offset, which is why the bronze contract refuses it."""
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split(",")
        if line:
            fields[PICKUP] += "+01:00"
        out.append(",".join(fields))
    return out


def test_a_failing_bronze_gate_keeps_silver_from_materializing_for_that_month_while_other_months_proceed(
        instance, mirror, tmp_path):
    from taxi_platform.sample_source import write_month

    feb = write_month(YELLOW, "2019-02", 800, tmp_path / "gen")
    mirror.add(rewrite_csv(feb, tmp_path / "bad" / feb.name, _with_utc_offsets), "yellow")
    mirror.add(write_month(YELLOW, "2019-03", 800, tmp_path / "gen", seed=3), "yellow")

    bad = _run_yellow(instance, "2019-02")
    good = _run_yellow(instance, "2019-03")

    assert not bad.success
    gate = _gx_evaluations(bad.get_asset_check_evaluations())["bronze/yellow_tripdata:gx_bronze_suite"]
    assert not gate.passed and gate.severity == AssetCheckSeverity.ERROR
    assert "expect_column_values_to_match_regex on tpep_pickup_datetime failed" in gate.description
    assert "800 unexpected rows (100.00%)" in gate.description and "+01:00'" in gate.description
    failed = gate.metadata["failed_expectations"].value
    assert [(f["expectation"], f["column"], f["severity"]) for f in failed] == [
        ("expect_column_values_to_match_regex", "tpep_pickup_datetime", "critical")]
    assert len(failed[0]["unexpected_values"]) == 5
    # the gate ran before February replaced anything: bronze refused it, silver never ran for it
    assert not bad.asset_materializations_for_node("bronze__yellow_tripdata")
    assert not bad.asset_materializations_for_node("silver__yellow_tripdata")
    assert table_digest("bronze.yellow_tripdata", feb.name)[0] == 0
    assert table_digest("bronze.yellow_tripdata_landed", feb.name)[0] == 0  # nothing left behind
    assert table_digest("silver.yellow_tripdata", feb.name)[0] == 0
    # and a later run of silver alone cannot load the refused file: bronze never published it
    silver_only = materialize([a for a in ingest_assets if a.key == SILVER], partition_key="2019-02",
                              instance=instance, resources=resources_from_env(), raise_on_error=False)
    assert not silver_only.success and table_digest("silver.yellow_tripdata", feb.name)[0] == 0
    assert good.success
    assert _silver_partitions(instance) == {"2019-03"}
    assert table_digest("silver.yellow_tripdata", "yellow_tripdata_2019-03.csv.gz")[0] > 0
    checks = _gx_evaluations(good.get_asset_check_evaluations())
    assert all(e.passed for e in checks.values()) and len(checks) == 2
