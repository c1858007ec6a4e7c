"""The monthly schedules: cron, timezone, default status, and the partition each tick asks for."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dagster import DefaultScheduleStatus, Definitions, build_schedule_context

from taxi_platform.assets import build_ingest_assets
from taxi_platform.jobs import build_colour_jobs
from taxi_platform.partitions import TLC
from taxi_platform.resources import resources_from_env
from taxi_platform.schedules import build_schedules, month_before

UTC = dt.UTC


def schedules(env: dict[str, str] | None = None):
    assets = build_ingest_assets(TLC)  # every month to this day: the TLC's partitions
    jobs = build_colour_jobs(assets)
    defs = Definitions(assets=assets, jobs=list(jobs.values()),
                       schedules=build_schedules(jobs, env or {}), resources=resources_from_env())
    REPOSITORIES.update({name: defs.get_repository_def()
                         for name in ("green_tripdata_job_schedule", "yellow_tripdata_job_schedule")})
    return {name: defs.resolve_schedule_def(name) for name in REPOSITORIES}


REPOSITORIES: dict = {}  # schedule name -> the repository it was last loaded in


def tick(schedule, when: dt.datetime):
    """Evaluate one tick at ``when``, as the daemon does (the repository resolves partitions)."""
    return schedule.evaluate_tick(build_schedule_context(
        scheduled_execution_time=when, repository_def=REPOSITORIES[schedule.name]))


def test_green_runs_on_the_first_at_nine_and_yellow_at_ten_in_utc_by_default():
    found = schedules()
    assert found["green_tripdata_job_schedule"].cron_schedule == "0 9 1 * *"
    assert found["yellow_tripdata_job_schedule"].cron_schedule == "0 10 1 * *"
    assert {s.execution_timezone for s in found.values()} == {"UTC"}
    assert {s.job_name for s in found.values()} == {"green_tripdata_job", "yellow_tripdata_job"}


def test_a_green_tick_on_2024_03_01_at_nine_requests_2024_02():
    result = tick(schedules()["green_tripdata_job_schedule"], dt.datetime(2024, 3, 1, 9, tzinfo=UTC))
    (request,) = result.run_requests
    assert request.partition_key == "2024-02"
    assert request.run_key == "2024-02"
    assert request.tags["taxi"] == "green" and request.tags["taxi/trigger"] == "schedule"


@pytest.mark.parametrize("when, month", [
    (dt.datetime(2024, 1, 1, 10, tzinfo=UTC), "2023-12"),  # over the year boundary
    (dt.datetime(2019, 2, 1, 10, tzinfo=UTC), "2019-01"),  # the mirror's first month
    (dt.datetime(2024, 3, 1, 10, tzinfo=UTC), "2024-02"),  # a leap February
])
def test_a_yellow_tick_requests_the_month_that_just_ended(when, month):
    (request,) = tick(schedules()["yellow_tripdata_job_schedule"], when).run_requests
    assert request.partition_key == month
    assert request.tags["taxi"] == "yellow"


def test_schedules_are_stopped_by_default_and_running_when_the_deployment_says_so():
    assert {s.default_status for s in schedules().values()} == {DefaultScheduleStatus.STOPPED}
    running = schedules({"TAXI_AUTOMATION_DEFAULT_STATUS": "running"})
    assert {s.default_status for s in running.values()} == {DefaultScheduleStatus.RUNNING}
    with pytest.raises(ValueError, match="TAXI_AUTOMATION_DEFAULT_STATUS"):
        schedules({"TAXI_AUTOMATION_DEFAULT_STATUS": "sometimes"})


def test_a_configured_timezone_ticks_at_nine_local_time_for_the_local_month_that_ended():
    found = schedules({"TAXI_SCHEDULE_TIMEZONE": "America/New_York"})
    green = found["green_tripdata_job_schedule"]
    assert green.execution_timezone == "America/New_York" and green.cron_schedule == "0 9 1 * *"
    when = dt.datetime(2024, 3, 1, 9, tzinfo=ZoneInfo("America/New_York"))
    (request,) = tick(green, when).run_requests
    assert request.partition_key == "2024-02" and request.run_key == "2024-02"
    assert request.tags["taxi"] == "green"


def test_far_east_of_utc_a_month_that_has_not_ended_in_utc_is_skipped_not_requested():
    green = schedules({"TAXI_SCHEDULE_TIMEZONE": "Australia/Sydney"})["green_tripdata_job_schedule"]
    # 09:00 on 1 March in Sydney is still 29 February in UTC: partition 2024-02 does not exist yet.
    result = tick(green, dt.datetime(2024, 3, 1, 9, tzinfo=ZoneInfo("Australia/Sydney")))
    assert result.run_requests == [] and "2024-02" in result.skip_message


def test_an_unknown_timezone_is_refused_with_the_variable_named():
    with pytest.raises(ValueError, match="TAXI_SCHEDULE_TIMEZONE='Mars/Olympus'"):
        schedules({"TAXI_SCHEDULE_TIMEZONE": "Mars/Olympus"})


def test_month_before_steps_back_over_year_ends():
    assert month_before(dt.date(2024, 1, 1)) == "2023-12"
    assert month_before(dt.date(2024, 3, 31)) == "2024-02"
