"""The dbt models as Dagster assets (no dbt run): keys by layer, one lineage graph with silver,
partitions, descriptions on every asset and column, dbt tests as blocking checks."""

from __future__ import annotations

from dagster import AssetKey

from taxi_platform.dbt_project import partition_filenames


def test_partition_filenames_are_both_colours_and_both_sources_of_every_month_in_the_range():
    assert partition_filenames("2019-12", "2020-01") == [
        "yellow_tripdata_2019-12.csv.gz", "yellow_tripdata_2019-12.parquet",
        "green_tripdata_2019-12.csv.gz", "green_tripdata_2019-12.parquet",
        "yellow_tripdata_2020-01.csv.gz", "yellow_tripdata_2020-01.parquet",
        "green_tripdata_2020-01.csv.gz", "green_tripdata_2020-01.parquet"]


def _schema(node):
    value = node.metadata["dagster/column_schema"]
    return getattr(value, "schema", value)


def test_dbt_models_are_assets_in_one_graph_with_silver_keyed_and_grouped_by_layer():
    from taxi_platform.definitions import defs
    from taxi_platform.partitions import all_colours_partitions

    graph = defs.resolve_asset_graph()
    key = AssetKey.from_user_string
    fct, zones, mart = key("gold/fct_trips"), key("gold/dim_zones"), key("marts/dm_monthly_zone_revenue")
    stg_yellow, stg_green = key("staging/stg_yellow_tripdata"), key("staging/stg_green_tripdata")
    assert graph.get(stg_yellow).parent_keys == {key("silver/yellow_tripdata")}
    assert graph.get(stg_green).parent_keys == {key("silver/green_tripdata")}
    assert {stg_yellow, stg_green, zones} <= graph.get(fct).parent_keys
    assert graph.get(mart).parent_keys == {fct}
    assert {k.to_user_string() for k in graph.get_all_asset_keys() if k.path[0] in ("seeds", "staging", "gold", "marts")} == {
        "seeds/taxi_zone_lookup", "seeds/payment_type_lookup", "staging/stg_yellow_tripdata",
        "staging/stg_green_tripdata", "gold/dim_zones", "gold/fct_trips", "marts/dm_monthly_zone_revenue"}

    assert graph.get(fct).partitions_def == all_colours_partitions()
    assert graph.get(fct).backfill_policy.max_partitions_per_run is None  # single run
    assert graph.get(mart).partitions_def is None and graph.get(zones).partitions_def is None
    for asset_key, group in [(fct, "gold"), (zones, "gold"), (mart, "marts"), (stg_yellow, "staging")]:
        node = graph.get(asset_key)
        assert node.group_name == group
        assert node.description and len(node.description) > 80
        columns = {c.name: c.description for c in _schema(node).columns}
        assert all(columns.values()), f"{asset_key.to_user_string()}: a column without a description"
    assert "revenue_monthly_total_amount" in [c.name for c in _schema(graph.get(mart)).columns]

    checks = {(c.asset_key.to_user_string(), c.name): graph.get_check_spec(c) for c in graph.asset_check_keys}
    assert checks[("gold/fct_trips", "unique_combination_of_columns_fct_trips_service_type__trip_id")].blocking
    assert checks[("marts/dm_monthly_zone_revenue",
                   "unique_combination_of_columns_dm_monthly_zone_revenue_revenue_zone__revenue_month__service_type")].blocking


def test_only_the_newest_profiles_partial_parse_states_are_kept(tmp_path, monkeypatch):
    import os

    from taxi_platform import dbt_project

    states = tmp_path / "partial_parse"
    states.mkdir()
    for i in range(dbt_project.PARTIAL_PARSE_KEEP + 5):
        old = states / f"old{i:03d}.msgpack"
        old.write_bytes(b"state")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    invocation = tmp_path / "target"
    invocation.mkdir()
    (invocation / dbt_project.PARTIAL_PARSE).write_bytes(b"new state")
    monkeypatch.setattr(dbt_project, "partial_parse_cache", lambda env: states / "new.msgpack")

    dbt_project.keep_partial_parse(invocation, env={})

    kept = sorted(p.name for p in states.iterdir())
    assert len(kept) == dbt_project.PARTIAL_PARSE_KEEP
    assert "new.msgpack" in kept and "old000.msgpack" not in kept and "old068.msgpack" in kept
