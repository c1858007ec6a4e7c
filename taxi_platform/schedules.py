"""Monthly schedules, built from the partitioned colour jobs: the old cron triggers.

| schedule | cron (old Kestra trigger) | requests |
|---|---|---|
| green_tripdata_job_schedule  | ``0 9 1 * *``  | the month that just ended |
| yellow_tripdata_job_schedule | ``0 10 1 * *`` | the month that just ended |

A tick on 2024-03-01 09:00 requests partition ``2024-02``, with run key ``2024-02`` (a month is
never requested twice by the same schedule).

Timezone: ``TAXI_SCHEDULE_TIMEZONE`` (default ``UTC``). In UTC the schedules come straight from
``build_schedule_from_partitioned_job`` (which runs in the partitions' timezone, UTC). In any
other timezone a cron schedule in that timezone requests the month before the tick's local date.

Default status: STOPPED, because a schedule that starts on its own downloads from the internet.
Switch them on in the UI (Automation), with ``dagster schedule start <name>``, or for a whole
deployment with ``TAXI_AUTOMATION_DEFAULT_STATUS=running`` (read when the code location loads).
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo

from dagster import (
    DefaultScheduleStatus,
    MonthlyPartitionsDefinition,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    build_schedule_from_partitioned_job,
    schedule,
)

from taxi_platform.jobs import COLOUR_TAG, TRIGGER_TAG
from taxi_platform.partitions import MONTH_KEY_FORMAT, month_bounds, within

# Hour of day (on the 1st) of each colour's tick: the Kestra crons `0 9 1 * *` / `0 10 1 * *`.
SCHEDULE_HOURS = {"green": 9, "yellow": 10}


def schedule_timezone(env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    name = (env.get("TAXI_SCHEDULE_TIMEZONE") or "UTC").strip()
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"TAXI_SCHEDULE_TIMEZONE={name!r} is not an IANA timezone "
                         "(e.g. UTC, America/New_York)") from exc
    return name


def automation_default_status(env: dict[str, str] | None = None) -> str:
    """``stopped`` (default) or ``running``, from TAXI_AUTOMATION_DEFAULT_STATUS."""
    env = os.environ if env is None else env
    value = (env.get("TAXI_AUTOMATION_DEFAULT_STATUS") or "stopped").strip().lower()
    if value not in ("stopped", "running"):
        raise ValueError(f"TAXI_AUTOMATION_DEFAULT_STATUS={value!r}: use 'stopped' or 'running'")
    return value


def month_before(day: dt.date) -> str:
    """The partition key of the month before ``day``'s month: 2024-03-01 -> ``2024-02``."""
    first = day.replace(day=1)
    return (first - dt.timedelta(days=1)).strftime(MONTH_KEY_FORMAT)


def month_has_ended(month: str, at: dt.datetime) -> bool:
    return month_bounds(month)[1].replace(tzinfo=dt.UTC) <= at.astimezone(dt.UTC)


def partition_exists(month: str, at: dt.datetime, partitions: MonthlyPartitionsDefinition) -> bool:
    """Whether Dagster has the month among ``partitions`` at ``at``: a month exists once it has
    ended (in UTC, the partitions' timezone) and lies within the months the source publishes."""
    return month_has_ended(month, at) and within(partitions, month)


def _local_timezone_schedule(job, colour: str, hour: int, timezone: str, status):
    @schedule(
        name=f"{job.name}_schedule",
        cron_schedule=f"0 {hour} 1 * *",
        execution_timezone=timezone,
        job=job,
        default_status=status,
        description=(f"The {colour} month that just ended, on the 1st at {hour:02d}:00 {timezone}."),
    )
    def _monthly(context: ScheduleEvaluationContext):
        month = month_before(context.scheduled_execution_time.date())
        if not partition_exists(month, context.scheduled_execution_time, job.partitions_def):
            return SkipReason(f"partition {month} does not exist yet at "
                              f"{context.scheduled_execution_time.isoformat()}")
        return RunRequest(run_key=month, partition_key=month,
                          tags={COLOUR_TAG: colour, TRIGGER_TAG: "schedule"})

    return _monthly


def build_schedules(jobs: dict, env: dict[str, str] | None = None) -> list:
    """One monthly schedule per colour job (see the module docstring)."""
    timezone = schedule_timezone(env)
    status = (DefaultScheduleStatus.RUNNING if automation_default_status(env) == "running"
              else DefaultScheduleStatus.STOPPED)
    schedules = []
    for colour, job in jobs.items():
        hour = SCHEDULE_HOURS[colour]
        if timezone == "UTC":
            schedules.append(build_schedule_from_partitioned_job(
                job, name=f"{job.name}_schedule", day_of_month=1, hour_of_day=hour, minute_of_hour=0,
                default_status=status, tags={COLOUR_TAG: colour, TRIGGER_TAG: "schedule"},
                description=f"The {colour} month that just ended, on the 1st at {hour:02d}:00 UTC."))
        else:
            schedules.append(_local_timezone_schedule(job, colour, hour, timezone, status))
    return schedules
