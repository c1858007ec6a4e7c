"""The one Definitions object of the taxi_platform code location."""

from dagster import Definitions, in_process_executor

from taxi_platform.assets import ingest_assets
from taxi_platform.assets.dbt import dbt_asset_defs, dbt_automation_sensor
from taxi_platform.checks import all_checks
from taxi_platform.jobs import build_colour_jobs, setup_job
from taxi_platform.resources import resources_from_env
from taxi_platform.schedules import build_schedules
from taxi_platform.sensors import build_sensors

all_assets = [*ingest_assets, *dbt_asset_defs]
colour_jobs = build_colour_jobs(all_assets)  # one job per colour: its monthly assets

defs = Definitions(
    assets=all_assets,
    asset_checks=[*all_checks],
    jobs=[*colour_jobs.values(), setup_job],
    schedules=build_schedules(colour_jobs),
    sensors=[*build_sensors(colour_jobs), dbt_automation_sensor],
    resources=resources_from_env(),
    # One process per run: a month is a chain of steps, and a step process each would only add
    # start-up time; the run's resources (and the watchdog's claim) are set up before any step.
    executor=in_process_executor,
)
