"""The row_reconciliation checks in real Dagster runs on a real DuckDB file (and PostgreSQL):
a month whose file has quarantined rows, duplicates and ids an earlier month owns reconciles
exactly, with the figures in the check's metadata; rows deleted from silver or gold behind the
platform's back fail the check the next time it runs alone, naming the file and the difference."""

from __future__ import annotations

import gzip

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    materialize,
)

from taxi_platform.assets import ingest_assets
from taxi_platform.assets.dbt import dbt_reference_assets, dbt_trip_and_mart_assets
from taxi_platform.checks import all_checks
from taxi_platform.checks.reconciliation import CHECK
from taxi_platform.resources import build_warehouse, resources_from_env
from taxi_platform.sample_source import write_month, write_month_parquet
from taxi_platform.schemas import GREEN, PARQUET, YELLOW
from taxi_platform.settings import Settings
from tests.support.fixtures import serve_directory
from tests.support.runs import failure_messages

JAN, FEB = YELLOW.filename("2019-01"), YELLOW.filename("2019-02")
GREEN_JAN = GREEN.filename("2019-01")
SILVER, FCT = AssetKey(["silver", "yellow_tripdata"]), AssetKey(["gold", "fct_trips"])
SILVER_ASSET = next(a for a in ingest_assets if SILVER in a.keys)


def _check(key: AssetKey):
    return next(c for c in all_checks if AssetCheckKey(key, CHECK) in c.check_keys)


SILVER_CHECK, GREEN_CHECK, GOLD_CHECK = (_check(SILVER), _check(AssetKey(["silver", "green_tripdata"])),
                                         _check(FCT))
YELLOW_ASSETS = [a for a in ingest_assets if "yellow" in a.key.to_user_string()]


@pytest.fixture
def instance(platform_env):
    with DagsterInstance.get() as instance:  # the fixture's DAGSTER_HOME
        yield instance


def warehouse():
    return build_warehouse(Settings.from_env())


def evaluation(result, key: AssetKey):
    (found,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK and e.asset_key == key]
    return found


def materialize_month(instance, month: str, assets=tuple(YELLOW_ASSETS), checks=(SILVER_CHECK,)):
    result = materialize([*assets, *checks], partition_key=month, instance=instance,
                         resources=resources_from_env(), raise_on_error=False)
    assert result.success, failure_messages(result)
    return result


def check_alone(instance, asset, check, key: AssetKey, month: str):
    """The check alone, as "Execute checks" runs it (the partition as the run's tag: with no
    asset selected, `partition_key=` finds no partitions definition to validate it against)."""
    result = materialize([asset, check], selection=AssetSelection.checks(check), tags={"dagster/partition": month},
                         instance=instance, resources=resources_from_env(), raise_on_error=False)
    assert not result.get_asset_materialization_events(), "only the check ran"
    return evaluation(result, key)


def figures(check) -> dict:
    return {k: v.value for k, v in check.metadata.items()}


def quirky_february(mirror, tmp_path) -> int:
    """February in the mirror: 1,500 generated trips plus one of them twice more (2 duplicates
    collapsed), 3 of January's real trips (ids January owns), 2 rows whose fare is not a number
    (quarantined); lines ending in CRLF and some in LF, the last without a line end. Returns
    its data rows."""
    generated = write_month(YELLOW, "2019-02", 1_500, tmp_path / "gen")
    lines = [x for x in gzip.decompress(generated.read_bytes()).decode().split("\r\n") if x]
    january = [x for x in gzip.decompress((mirror.root / "yellow" / JAN).read_bytes()).decode().split("\r\n") if x]
    fare = YELLOW.sql_names.index("fare_amount")

    def unreadable(line):
        fields = line.split(",")
        fields[fare] = "twelve"
        return ",".join(fields)

    rows = [*lines[1:], lines[5], lines[5], *january[1:4], unreadable(lines[7]), unreadable(lines[9])]
    text = lines[0] + "\r\n" + "".join(row + ("\n" if i % 100 == 0 else "\r\n") for i, row in enumerate(rows))
    target = mirror.root / "yellow" / FEB
    target.write_bytes(gzip.compress(text.rstrip("\r\n").encode()))
    return len(rows)


def test_a_month_with_duplicates_quarantined_rows_and_ids_of_an_earlier_month_reconciles_with_its_figures(
        instance, mirror, tmp_path):
    rows = quirky_february(mirror, tmp_path)
    jan = evaluation(materialize_month(instance, "2019-01"), SILVER)
    assert jan.passed and jan.partition == "2019-01", jan.description
    assert figures(jan) == {"file": JAN, "file_rows": 10_000, "bronze_rows": 10_000, "silver_rows": 10_000,
                            "rows_quarantined": 0, "duplicates_collapsed": 0, "ids_owned_by_other_months": 0,
                            "silver_accounted": 10_000, "bronze_minus_file": 0, "silver_accounted_minus_bronze": 0}

    feb = evaluation(materialize_month(instance, "2019-02"), SILVER)
    assert feb.passed and feb.partition == "2019-02", feb.description
    meta = figures(feb)
    (in_silver,), = warehouse().query("SELECT count(*) FROM silver.yellow_tripdata WHERE filename = ?", [FEB])
    assert meta["file"] == FEB and meta["file_rows"] == meta["bronze_rows"] == meta["silver_accounted"] == rows
    assert meta["silver_rows"] == in_silver
    assert meta["rows_quarantined"] == 2 and meta["ids_owned_by_other_months"] == 3
    assert meta["duplicates_collapsed"] >= 2
    assert meta["silver_rows"] + 2 + meta["duplicates_collapsed"] + 3 == rows
    assert feb.description.startswith(f"silver/yellow_tripdata reconciles: {FEB}: {rows:,} rows in the file = ")


def test_ids_an_earlier_month_loaded_later_takes_are_a_warning_to_rebuild_and_the_rebuilt_month_reconciles(
        instance, mirror, tmp_path):
    rows = quirky_february(mirror, tmp_path)
    assert evaluation(materialize_month(instance, "2019-02"), SILVER).passed  # February first: 3 ids its own
    assert evaluation(materialize_month(instance, "2019-01"), SILVER).passed  # January takes them back

    stale = check_alone(instance, SILVER_ASSET, SILVER_CHECK, SILVER, "2019-02")

    assert not stale.passed and stale.severity == AssetCheckSeverity.WARN
    assert f"{FEB} (partition 2019-02): silver accounts for {rows - 3:,} rows" in stale.description
    assert ("(-3 in silver)" in stale.description and f"; {JAN} was rebuilt in silver since" in stale.description
            and "materialize silver/yellow_tripdata for 2019-02" in stale.description)

    rebuilt = evaluation(materialize_month(instance, "2019-02"), SILVER)
    assert rebuilt.passed, rebuilt.description
    assert figures(rebuilt)["ids_owned_by_other_months"] == 3


def test_silver_rows_deleted_behind_the_platforms_back_fail_the_next_check_naming_the_file_and_the_difference(
        instance):
    assert evaluation(materialize_month(instance, "2019-01"), SILVER).passed
    warehouse().query("DELETE FROM silver.yellow_tripdata WHERE unique_row_id IN (SELECT unique_row_id "
                      "FROM silver.yellow_tripdata WHERE filename = ? ORDER BY unique_row_id LIMIT 7)", [JAN])

    check = check_alone(instance, SILVER_ASSET, SILVER_CHECK, SILVER, "2019-01")

    assert not check.passed and check.severity == AssetCheckSeverity.ERROR and check.partition == "2019-01"
    meta = figures(check)
    assert (meta["file_rows"], meta["bronze_rows"], meta["silver_rows"], meta["silver_accounted"]) == (
        10_000, 10_000, 9_993, 9_993)
    assert (meta["bronze_minus_file"], meta["silver_accounted_minus_bronze"]) == (0, -7)
    assert check.description == (
        f"silver/yellow_tripdata does not reconcile: {JAN} (partition 2019-01): silver accounts for 9,993 rows, "
        "bronze.yellow_tripdata holds 10,000 (-7 in silver): 9,993 in silver.yellow_tripdata + 0 quarantined "
        "+ 0 duplicates collapsed + 0 ids owned by other months")

    # The next materialization notices the missing rows, rebuilds the month, and it reconciles again.
    assert evaluation(materialize_month(instance, "2019-01"), SILVER).passed


@pytest.mark.slow
def test_fct_trips_reconciles_with_silver_of_both_colours_and_rows_changed_behind_its_back_fail_it_per_file(
        instance):
    result = materialize_month(instance, "2019-01", assets=(*ingest_assets, dbt_reference_assets, dbt_trip_and_mart_assets),
                               checks=(SILVER_CHECK, GREEN_CHECK, GOLD_CHECK))
    assert evaluation(result, AssetKey(["silver", "green_tripdata"])).passed
    gold = evaluation(result, FCT)
    assert gold.passed and gold.partition == "2019-01", gold.description
    meta = figures(gold)
    assert (meta["silver_rows"], meta["fct_trips_rows"], meta["filtered_by_design"], meta["fct_trips_minus_silver"]) \
        == (10_008, 10_008, 0, 0)
    assert meta["files"] == {JAN: {"silver_rows": 10_000, "fct_trips_rows": 10_000},
                             GREEN_JAN: {"silver_rows": 8, "fct_trips_rows": 8}}

    # Behind the platform's back: three green trips leave gold, two yellow trips leave silver.
    warehouse().query("DELETE FROM gold.fct_trips WHERE trip_id IN (SELECT trip_id FROM gold.fct_trips "
                      "WHERE service_type = 'Green' ORDER BY trip_id LIMIT 3) AND service_type = 'Green'")
    warehouse().query("DELETE FROM silver.yellow_tripdata WHERE unique_row_id IN (SELECT unique_row_id "
                      "FROM silver.yellow_tripdata ORDER BY unique_row_id LIMIT 2)")

    gold = check_alone(instance, dbt_trip_and_mart_assets, GOLD_CHECK, FCT, "2019-01")

    assert not gold.passed and gold.severity == AssetCheckSeverity.ERROR
    assert gold.description == (
        "gold/fct_trips does not reconcile: "
        f"{GREEN_JAN} (partition 2019-01): gold.fct_trips holds 5 rows of it, silver 8 (-3 in fct_trips); "
        f"{JAN} (partition 2019-01): gold.fct_trips holds 10,000 rows of it, silver 9,998 (+2 in fct_trips)")
    assert figures(gold)["fct_trips_minus_silver"] == -1
    assert figures(gold)["files"] == {JAN: {"silver_rows": 9_998, "fct_trips_rows": 10_000},
                                      GREEN_JAN: {"silver_rows": 8, "fct_trips_rows": 5}}


def test_a_parquet_month_reconciles_with_the_row_count_in_its_footer(platform_env, tmp_path, monkeypatch):
    from taxi_platform.assets import build_ingest_assets
    from taxi_platform.checks.reconciliation import build_silver_reconciliation

    write_month_parquet(YELLOW, "2020-04", 900, tmp_path / "tlc", seed=4)
    server, url = serve_directory(tmp_path / "tlc")
    monkeypatch.setenv("TAXI_SOURCE", "tlc")
    monkeypatch.setenv("TAXI_TLC_URL", url)
    try:
        with DagsterInstance.get() as instance:
            result = materialize_month(
                instance, "2020-04", assets=[a for a in build_ingest_assets("tlc") if "yellow" in a.key.to_user_string()],
                checks=(build_silver_reconciliation(YELLOW, "tlc"),))
    finally:
        server.shutdown()
    check = evaluation(result, SILVER)
    assert check.passed, check.description
    meta = figures(check)
    assert meta["file"] == YELLOW.filename("2020-04", PARQUET)
    assert meta["file_rows"] == meta["bronze_rows"] == meta["silver_accounted"] == 900


@pytest.mark.slow
def test_on_postgresql_silver_rows_deleted_behind_the_platforms_back_fail_the_next_check_too(
        instance, postgres_server, monkeypatch):
    for key, value in {"TAXI_WAREHOUSE": "postgres",
                       **postgres_server.env(postgres_server.create_database())}.items():
        monkeypatch.setenv(key, value)
    clean = evaluation(materialize_month(instance, "2019-01"), SILVER)
    assert clean.passed, clean.description
    assert figures(clean)["file_rows"] == figures(clean)["silver_accounted"] == 10_000
    warehouse().query("DELETE FROM silver.yellow_tripdata WHERE unique_row_id IN (SELECT unique_row_id "
                      "FROM silver.yellow_tripdata WHERE filename = ? ORDER BY unique_row_id LIMIT 4)", [JAN])

    check = check_alone(instance, SILVER_ASSET, SILVER_CHECK, SILVER, "2019-01")

    assert not check.passed and check.severity == AssetCheckSeverity.ERROR
    assert f"{JAN} (partition 2019-01): silver accounts for 9,996 rows" in check.description
    assert "(-4 in silver)" in check.description
