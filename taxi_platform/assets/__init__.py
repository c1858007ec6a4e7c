"""Software-defined assets, one module per layer: raw -> lake -> bronze -> silver (-> dbt)."""

from taxi_platform.assets.bronze import build_bronze_asset
from taxi_platform.assets.lake import build_lake_asset
from taxi_platform.assets.raw import build_raw_asset
from taxi_platform.assets.silver import build_silver_asset
from taxi_platform.schemas import SCHEMAS

BUILDERS = (build_raw_asset, build_lake_asset, build_bronze_asset, build_silver_asset)


def build_ingest_assets(source: str | None = None) -> list:
    """Every ingest asset (raw, lake, bronze, silver of each colour), partitioned by the months of
    ``source`` (TAXI_SOURCE when not given)."""
    return [build(schema, source) for build in BUILDERS for schema in SCHEMAS.values()]


ingest_assets = build_ingest_assets()
raw_assets = ingest_assets[: len(SCHEMAS)]
