"""The one Definitions object of the taxi_platform code location."""

import gc

from dagster import Definitions, in_process_executor

from taxi_platform.assets import build_ingest_assets
from taxi_platform.assets.dbt import build_dbt_assets, build_dbt_automation_sensor
from taxi_platform.checks import build_checks
from taxi_platform.freshness_alerts import freshness_alert_sensor
from taxi_platform.jobs import build_colour_jobs, setup_job
from taxi_platform.resources import resources_from_env
from taxi_platform.schedules import build_schedules
from taxi_platform.sensors import build_sensors


def build_definitions() -> Definitions:
    """Everything of the code location, as the environment configures it (TAXI_SOURCE: the
    partitions; TAXI_WAREHOUSE, TAXI_LAKE: the resources, and the kinds and table names shown)."""
    dbt_defs = build_dbt_assets()
    assets = [*build_ingest_assets(), *dbt_defs]
    colour_jobs = build_colour_jobs(assets)  # one job per colour: its monthly assets
    return Definitions(
        assets=assets,
        asset_checks=build_checks(),
        jobs=[*colour_jobs.values(), setup_job],
        schedules=build_schedules(colour_jobs),
        sensors=[*build_sensors(colour_jobs), build_dbt_automation_sensor(dbt_defs), freshness_alert_sensor],
        resources=resources_from_env(),
        # One process per run: a month is a chain of steps, and a step process each would only add
        # start-up time; the run's resources (and the watchdog's claim) are set up before any step.
        executor=in_process_executor,
    )


defs = build_definitions()

# What the code location imported and built lives as long as the process (a run worker, the
# webserver, the daemon): moved out of the garbage collector's full passes, which would otherwise
# scan these ~270,000 objects again and again, 0.1 s each. GX, imported by a run's first
# validation, does the same for its own (checks/gx_context.py).
gc.freeze()
