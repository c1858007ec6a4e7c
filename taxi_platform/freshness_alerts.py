"""freshness_alert_sensor: one alert each time an asset's freshness turns to failing.

The daemon's freshness loop evaluates every freshness policy (taxi_platform/freshness.py) about
every 30 s and records a ``FRESHNESS_STATE_CHANGE`` event only when an asset's state changes.
This sensor (default RUNNING, every ``FRESHNESS_ALERT_INTERVAL_SECONDS``) reads those events after
its cursor (the last event's storage id) and, for each asset of this code location whose newest
change is to ``FAIL``, sends one alert through the failure alerts' channels
(``TAXI_ALERT_WEBHOOK_URL``, e-mail over SMTP; taxi_platform/sensors.py): the asset, since when,
what it is due, its newest month and when it was last materialized, a link. A late month thus
alerts once, however many ticks it stays late; it alerts again only after it was fresh again and
turned late anew. A return to passing is logged, not sent. A delivery that fails makes the tick
fail with the reason (secrets masked); the cursor stays, so the next tick tries again.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    EventRecordsFilter,
    FreshnessPolicy,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from taxi_platform.freshness import freshness_policy_for
from taxi_platform.sensors import DEFAULT_UI_URL, deliver_alert, plain_email

FRESHNESS_ALERT_INTERVAL_SECONDS = 60
MAX_EVENTS_PER_TICK = 1000
FAIL, PASS = "FAIL", "PASS"  # dagster's FreshnessState values (a str enum)


@dataclass(frozen=True)
class LateAsset:
    key: str  # silver/yellow_tripdata
    since: dt.datetime
    due: str
    newest_month: str | None
    last_materialized: dt.datetime | None
    link: str


def _span(delta: dt.timedelta) -> str:
    if delta.days and not delta.seconds:
        return f"{delta.days} day{'s' if delta.days != 1 else ''}"
    hours = delta.total_seconds() / 3600
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def describe_policy(policy: FreshnessPolicy) -> str:
    """What the policy asks, in words."""
    cron = getattr(policy, "deadline_cron", None)
    if cron:
        return (f"materialized within the {_span(policy.lower_bound_delta)} before every "
                f"deadline `{cron}` ({policy.timezone})")
    fail_window = getattr(policy, "fail_window", None)
    if fail_window:
        return f"materialized at least every {_span(fail_window.to_timedelta())}"
    return str(policy)


def _utc(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "never"


def describe_late_asset(instance: DagsterInstance, key: AssetKey, since: float, policy: FreshnessPolicy,
                        ui_url: str) -> LateAsset:
    """The facts a freshness alert carries."""
    months = instance.get_materialized_partitions(key)
    latest = instance.fetch_materializations(key, limit=1).records
    return LateAsset(
        key=key.to_user_string(), since=dt.datetime.fromtimestamp(since, dt.UTC), due=describe_policy(policy),
        newest_month=max(months) if months else None,
        last_materialized=dt.datetime.fromtimestamp(latest[0].timestamp, dt.UTC) if latest else None,
        link=f"{ui_url.rstrip('/')}/assets/{'/'.join(key.path)}")


def freshness_payload(late: LateAsset) -> dict:
    """A Slack-compatible payload, like the failed-run alert's."""
    newest = f"newest month {late.newest_month}, " if late.newest_month else ""
    text = (f"taxi_platform asset late: {late.key} is failing its freshness policy since {_utc(late.since)} "
            f"(due: {late.due}); {newest}last materialized {_utc(late.last_materialized)}. {late.link}")
    fields = [f"*Asset*\n{late.key}", f"*Failing since*\n{_utc(late.since)}", f"*Due*\n{late.due}",
              f"*Last materialized*\n{_utc(late.last_materialized)}"]
    if late.newest_month:
        fields.append(f"*Newest month*\n{late.newest_month}")
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"Asset late: {late.key}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open the asset"}, "url": late.link}]},
        ],
    }


def freshness_email(late: LateAsset, sender: str, recipients: list[str]) -> EmailMessage:
    return plain_email(
        f"asset late: {late.key}",
        f"Asset:             {late.key}\nFailing since:     {_utc(late.since)}\nDue:               {late.due}\n"
        + (f"Newest month:      {late.newest_month}\n" if late.newest_month else "")
        + f"Last materialized: {_utc(late.last_materialized)}\nAsset page:        {late.link}\n",
        sender, recipients)


def _policies(context: SensorEvaluationContext) -> Mapping[AssetKey, FreshnessPolicy] | None:
    """The freshness policies of this code location's assets (None: no definitions at hand)."""
    repository = context.repository_def
    if repository is None:
        return None
    graph = repository.asset_graph
    return {key: graph.get(key).freshness_policy for key in graph.get_all_asset_keys()
            if graph.get(key).freshness_policy is not None}


def evaluate_freshness_alerts(context: SensorEvaluationContext,
                              env: Mapping[str, str] | None = None) -> SensorResult:
    """One tick of the freshness alert sensor (see the module docstring)."""
    env = os.environ if env is None else env
    after = int(context.cursor) if context.cursor else None
    records = context.instance.event_log_storage.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.FRESHNESS_STATE_CHANGE, after_cursor=after),
        limit=MAX_EVENTS_PER_TICK, ascending=True)
    if not records:
        return SensorResult(skip_reason="no freshness change", cursor=context.cursor)
    newest = {}  # the newest change of each asset among these events
    for record in records:
        change = record.event_log_entry.dagster_event.event_specific_data
        newest[change.key] = change
    policies = _policies(context)
    ui_url = env.get("TAXI_DAGSTER_UI_URL") or DEFAULT_UI_URL
    alerted, problems = [], []
    for key, change in newest.items():
        policy = freshness_policy_for(key) if policies is None else policies.get(key)
        if policy is None:
            continue  # another code location's asset, or a policy since removed
        if change.new_state == PASS and change.previous_state == FAIL:
            context.log.info(f"freshness: {key.to_user_string()} is fresh again")
        if change.new_state != FAIL:
            continue
        late = describe_late_asset(context.instance, key, change.state_change_timestamp, policy, ui_url)
        context.log.warning(f"freshness: {late.key} is late (due: {late.due})")
        try:
            deliver_alert(f"late asset {late.key}", freshness_payload(late),
                          lambda sender, recipients, late=late: freshness_email(late, sender, recipients),
                          env, context.log)
            alerted.append(late.key)
        except RuntimeError as exc:
            problems.append(str(exc))
    if problems:
        raise RuntimeError("; ".join(problems))
    return SensorResult(skip_reason=f"late: {', '.join(alerted)}" if alerted else "no asset turned late",
                        cursor=str(records[-1].storage_id))


@sensor(
    name="freshness_alert_sensor",
    minimum_interval_seconds=FRESHNESS_ALERT_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=("Sends one alert (TAXI_ALERT_WEBHOOK_URL, e-mail) each time an asset's freshness "
                 "turns to failing: a silver month or the mart not there by its deadline "
                 "(TAXI_SILVER_DUE_CRON, TAXI_MART_DUE_CRON). Does nothing when no channel is set."),
)
def freshness_alert_sensor(context: SensorEvaluationContext):
    return evaluate_freshness_alerts(context)
