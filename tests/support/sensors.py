"""Sensors evaluated as the daemon evaluates them, against the platform's definitions built after
a test's environment is in place."""

from __future__ import annotations

from dagster import DagsterInstance, Definitions, build_sensor_context

from taxi_platform.assets import ingest_assets
from taxi_platform.jobs import build_colour_jobs
from taxi_platform.resources import resources_from_env
from taxi_platform.sensors import build_sensors


def platform_defs() -> Definitions:
    """definitions.py's Definitions, built after the test's environment is in place."""
    jobs = build_colour_jobs(ingest_assets)
    return Definitions(assets=ingest_assets, jobs=list(jobs.values()), sensors=build_sensors(jobs),
                       resources=resources_from_env())


class Ticks:
    """Evaluates the landing sensor tick after tick, carrying the cursor as the daemon does."""

    def __init__(self, instance: DagsterInstance):
        self.defs, self.instance, self.cursor = platform_defs(), instance, None
        self.sensor = self.defs.resolve_sensor_def("landing_sensor")

    def tick(self):
        context = build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs)
        result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result.run_requests

    def run(self, request):
        """Run what ``request`` asks for, as the daemon would launch it, in this instance."""
        job = self.defs.resolve_job_def(request.job_name)
        return job.execute_in_process(partition_key=request.partition_key, tags=request.tags,
                                      instance=self.instance, raise_on_error=False)


def bronze_rows(filename: str) -> int:
    """The rows bronze holds for ``filename`` in the warehouse the environment configures."""
    from taxi_platform.resources import build_warehouse
    from taxi_platform.settings import Settings

    ((rows,),) = build_warehouse(Settings.from_env()).query(
        "SELECT count(*) FROM bronze.yellow_tripdata WHERE filename = ?", [filename])
    return rows
