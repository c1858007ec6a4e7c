"""Software-defined assets, one module per layer: raw -> lake -> bronze -> silver (-> dbt)."""

from taxi_platform.assets.bronze import bronze_assets
from taxi_platform.assets.lake import lake_assets
from taxi_platform.assets.raw import raw_assets
from taxi_platform.assets.silver import silver_assets

ingest_assets = [*raw_assets, *lake_assets, *bronze_assets, *silver_assets]
