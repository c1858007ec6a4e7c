"""Freshness: when a new month of ``silver/<colour>_tripdata``, and the mart after it, are due.

Declared with Dagster's own :class:`~dagster.FreshnessPolicy` (a cron deadline), evaluated by the
daemon's freshness loop (``freshness: enabled: true`` in the instance files), shown in the UI on
each asset (Freshness: Passing / Failing) and alerted once per turn to failing by
``freshness_alert_sensor`` (taxi_platform/freshness_alerts.py).

| asset | due | setting |
|---|---|---|
| ``silver/yellow_tripdata``, ``silver/green_tripdata`` | at every tick of ``TAXI_SILVER_DUE_CRON`` (default ``0 12 10 * *``: the 10th at 12:00), a month must have been materialized since the tick before | ``TAXI_SILVER_DUE_CRON`` |
| ``marts/dm_monthly_zone_revenue`` | the same a day later (default ``0 12 11 * *``) | ``TAXI_MART_DUE_CRON`` |

Deadlines are in ``TAXI_SCHEDULE_TIMEZONE`` (default UTC). The default follows the TLC's habit:
it publishes month M 47 to 62 days after M ends (2023-01 to 2024-05; see
``shared/data/tlc/published-metadata``), between the 17th of M+2 and the 2nd of M+3, one month a
month; so month M is due on the 10th of M+3, about 70 days after it ends and a week after the
latest publication seen. The window before each deadline is the shortest interval of the cron
(28 days for a monthly one: Dagster allows no more), so "since the tick before".

What Dagster measures is the latest materialization of any month: a month reloaded by hand also
counts as new. The alert names the newest month materialized, so a person can tell.

``TAXI_SOURCE=mirror`` publishes nothing new (2019-01 ... 2021-07, frozen): no policy by default,
since every deadline would fail. Setting ``TAXI_SILVER_DUE_CRON`` declares one there too.
``none`` (either variable) declares no policy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from dagster import AssetKey, FreshnessPolicy
from dagster._utils.schedules import get_smallest_cron_interval, is_valid_cron_string

from taxi_platform.partitions import TLC, source_from_env
from taxi_platform.schedules import schedule_timezone

DEFAULT_SILVER_DUE_CRON = "0 12 10 * *"  # the 10th of every month at 12:00
MART_KEY = AssetKey(["marts", "dm_monthly_zone_revenue"])
_OFF = {"none", "off", "no", "false", "0"}
_MONTHLY_CRON = re.compile(r"^(\S+)\s+(\S+)\s+(\d{1,2})\s+(\S+)\s+(\S+)$")


def _cron(name: str, value: str) -> str | None:
    value = " ".join(value.split())
    if value.lower() in _OFF:
        return None
    if not is_valid_cron_string(value):
        raise ValueError(f"{name}={value!r} is not a cron string (e.g. '{DEFAULT_SILVER_DUE_CRON}') or 'none'")
    return value


def silver_due_cron(env: Mapping[str, str] | None = None, source: str | None = None) -> str | None:
    """The deadline cron of every ``silver/<colour>_tripdata`` (None: no freshness policy)."""
    env = os.environ if env is None else env
    value = env.get("TAXI_SILVER_DUE_CRON")
    if value is None or not value.strip():
        return DEFAULT_SILVER_DUE_CRON if (source or source_from_env(env)) == TLC else None
    return _cron("TAXI_SILVER_DUE_CRON", value)


def one_day_later(cron: str) -> str:
    """``0 12 10 * *`` -> ``0 12 11 * *``: a monthly deadline moved to the next day (day of the
    month 1 to 27, so the next day exists in every month)."""
    match = _MONTHLY_CRON.match(cron)
    if not match or not 1 <= int(match.group(3)) <= 27:
        raise ValueError(f"TAXI_SILVER_DUE_CRON={cron!r}: the mart's deadline (a day later) cannot be "
                         "derived from it; set TAXI_MART_DUE_CRON too")
    minute, hour, day, month, weekday = match.groups()
    return f"{minute} {hour} {int(day) + 1} {month} {weekday}"


def mart_due_cron(env: Mapping[str, str] | None = None, source: str | None = None) -> str | None:
    """The deadline cron of ``marts/dm_monthly_zone_revenue``: TAXI_MART_DUE_CRON, or a day after
    silver's (None when silver has none)."""
    env = os.environ if env is None else env
    value = env.get("TAXI_MART_DUE_CRON")
    if value is not None and value.strip():
        return _cron("TAXI_MART_DUE_CRON", value)
    silver = silver_due_cron(env, source)
    return one_day_later(silver) if silver else None


def due_policy(cron: str | None, env: Mapping[str, str] | None = None) -> FreshnessPolicy | None:
    """At every tick of ``cron`` (in TAXI_SCHEDULE_TIMEZONE) the asset must have been materialized
    since the tick before (the window is the cron's shortest interval)."""
    if cron is None:
        return None
    return FreshnessPolicy.cron(deadline_cron=cron, lower_bound_delta=get_smallest_cron_interval(cron),
                                timezone=schedule_timezone(None if env is None else dict(env)))


def silver_freshness_policy(source: str | None = None,
                            env: Mapping[str, str] | None = None) -> FreshnessPolicy | None:
    """The policy of ``silver/<colour>_tripdata`` at ``source`` (TAXI_SOURCE when not given)."""
    return due_policy(silver_due_cron(env, source), env)


def mart_freshness_policy(env: Mapping[str, str] | None = None) -> FreshnessPolicy | None:
    """The policy of ``marts/dm_monthly_zone_revenue``."""
    return due_policy(mart_due_cron(env), env)


def freshness_policy_for(key: AssetKey, source: str | None = None,
                         env: Mapping[str, str] | None = None) -> FreshnessPolicy | None:
    """The policy this module gives ``key`` (None for every other asset)."""
    if key.path[0] == "silver":
        return silver_freshness_policy(source, env)
    if key == MART_KEY:
        return mart_freshness_policy(env)
    return None
