"""The one Definitions object of the taxi_platform code location."""

from dagster import Definitions

from taxi_platform.assets import ingest_assets
from taxi_platform.checks import all_checks
from taxi_platform.resources import resources_from_env

defs = Definitions(
    assets=[*ingest_assets],
    asset_checks=[*all_checks],
    resources=resources_from_env(),
)
