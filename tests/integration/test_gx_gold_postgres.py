"""The GX checks on a PostgreSQL warehouse (TAXI_WAREHOUSE=postgres, a real server): the same
committed gx/ context, connected through gx_context.warehouse_url, validates the real January
2019 from bronze to the mart in a real Dagster run, and the gold and mart checks catch a
duplicated trip and a mart that no longer adds up to silver."""

from __future__ import annotations

import pytest
from dagster import AssetCheckSeverity, AssetKey, AssetSelection, DagsterInstance, materialize

from taxi_platform.assets import ingest_assets
from taxi_platform.assets.dbt import dbt_asset_defs, dbt_trip_and_mart_assets
from taxi_platform.checks import all_checks
from taxi_platform.resources import build_warehouse, resources_from_env
from taxi_platform.settings import DEFAULT_DATA_DOCS_URL, Settings
from tests.support.runs import failure_messages

FCT, MART = AssetKey(["gold", "fct_trips"]), AssetKey(["marts", "dm_monthly_zone_revenue"])
GOLD_CHECK, GOLD_MART_CHECK = (next(c for c in all_checks if any(k.asset_key == key for k in c.check_keys))
                               for key in (FCT, MART))


def evaluations(result) -> dict[str, object]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()
            if e.check_name.startswith("gx_")}


@pytest.mark.slow
def test_every_gx_check_runs_on_postgresql_and_the_gold_and_mart_checks_catch_seeded_defects(
        platform_env, postgres_server, monkeypatch):
    monkeypatch.setenv("TAXI_WAREHOUSE", "postgres")
    for key, value in postgres_server.env(postgres_server.create_database()).items():
        monkeypatch.setenv(key, value)
    warehouse = build_warehouse(Settings.from_env())
    assert warehouse.name == "postgres"

    with DagsterInstance.get() as instance:
        built = materialize([*ingest_assets, *dbt_asset_defs, *all_checks], partition_key="2019-01",
                            instance=instance, resources=resources_from_env(), raise_on_error=False)
        assert built.success, failure_messages(built)
        checks = evaluations(built)
        # the four GX checks of silver, gold and the mart, and the bronze gate of each colour
        assert len(checks) == 6
        # the real green head is 8 trips, one picked up in December: a `mostly` rule, WARN
        errors = {k: e.description for k, e in checks.items()
                  if not e.passed and e.severity == AssetCheckSeverity.ERROR}
        assert errors == {}
        assert checks["gold/fct_trips:gx_gold_suite"].passed
        assert checks["marts/dm_monthly_zone_revenue:gx_marts_suite"].passed
        gold = checks["gold/fct_trips:gx_gold_suite"]
        assert gold.metadata["rows_validated"].value == 10_000 + 8
        assert gold.metadata["data_docs"].value.startswith(f"{DEFAULT_DATA_DOCS_URL}/validations/")

        (trip_id,), = warehouse.query("SELECT trip_id FROM gold.fct_trips WHERE service_type = 'Yellow' "
                                      "ORDER BY trip_id LIMIT 1")
        warehouse.query("INSERT INTO gold.fct_trips SELECT * FROM gold.fct_trips WHERE trip_id = ? "
                        "AND service_type = 'Yellow'", [trip_id])
        warehouse.query("UPDATE marts.dm_monthly_zone_revenue SET total_monthly_trips = total_monthly_trips + 1 "
                        "WHERE service_type = 'Green' AND revenue_month = DATE '2019-01-01' AND revenue_zone = ("
                        "SELECT min(revenue_zone) FROM marts.dm_monthly_zone_revenue WHERE service_type = 'Green' "
                        "AND revenue_month = DATE '2019-01-01')")

        failed = {}
        for asset, check, tags in ((dbt_trip_and_mart_assets, GOLD_CHECK, {"dagster/partition": "2019-01"}),
                                   (dbt_trip_and_mart_assets, GOLD_MART_CHECK, None)):
            result = materialize([asset, check], selection=AssetSelection.checks(check), tags=tags,
                                 instance=instance, resources=resources_from_env(), raise_on_error=False)
            failed.update(evaluations(result))

    gold, mart = failed["gold/fct_trips:gx_gold_suite"], failed["marts/dm_monthly_zone_revenue:gx_marts_suite"]
    assert not gold.passed and gold.severity == AssetCheckSeverity.ERROR
    assert "expect_compound_columns_to_be_unique on service_type, trip_id failed" in gold.description
    assert trip_id in gold.description
    assert not mart.passed and mart.severity == AssetCheckSeverity.ERROR
    (row,) = mart.metadata["failed_expectations"].value[0]["unexpected_values"]
    assert (row["revenue_month"], row["service_type"]) == ("2019-01-01", "Green")
    assert row["mart_trips"] == row["silver_trips"] + 1
