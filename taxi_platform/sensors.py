"""Sensors: files dropped in the landing folder, months appearing at the source, failure alerts.

landing_sensor (default RUNNING, every 30 s)
    Watches ``TAXI_LANDING_DIR`` (default ``<TAXI_DATA_DIR>/landing``, sub-folders included; or a
    GCS prefix ``gs://bucket/prefix/``, see taxi_platform/sources/landing.py) for
    ``<colour>_tripdata_YYYY-MM.csv[.gz]`` or ``.parquet``. Each new or changed file (same path with another
    mtime or size; in GCS another generation) becomes one run of that colour's job for that month, tagged
    ``taxi/landed_file=<path>``: the raw asset then copies that file instead of downloading.
    The cursor remembers ``path -> mtime:size`` of every file handled; the run key is the path
    and signature, so a file is never requested twice and never skipped. A file is taken once it
    has not changed for ``TAXI_LANDING_SETTLE_SECONDS`` (default 10), so a half-copied file is
    not loaded (a GCS object exists only once its upload is complete: no wait); names starting with ``.`` or ending ``.part``/``.tmp`` are uploads in progress.
    A name that does not match, or a month before 2019-01, is reported once in the sensor's log
    (a warning) and not run; a month that has not ended yet is reported and waits.

publication_sensor (default STOPPED like the schedules; TAXI_AUTOMATION_DEFAULT_STATUS)
    For each colour, probes the source (one HEAD request) for the month after the latest
    materialized ``raw/<colour>_tripdata`` partition (or after the last month it requested;
    with nothing materialized yet, the last complete month) and requests the run when the file
    appears, carrying on with the following months while they are published (at most
    ``MAX_PUBLICATION_REQUESTS`` a tick). A 404 is the normal answer and is quiet; connection
    errors are a warning. Interval: ``TAXI_PUBLICATION_INTERVAL_SECONDS`` (default 3600).

failure_alert_sensor (default RUNNING)
    On every failed run of this code location: a Slack-compatible JSON POST (``text`` +
    ``blocks``: job, partition, failed step, error, link to the run) to
    ``TAXI_ALERT_WEBHOOK_URL``, and an e-mail over SMTP when ``TAXI_ALERT_SMTP_HOST`` and
    ``TAXI_ALERT_EMAIL_TO`` are set. Nothing is sent when they are unset. A delivery that fails
    makes the sensor tick fail with the reason (visible in the UI), after trying every channel.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import requests
from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from taxi_platform.assets.raw import LANDED_FILE_TAG
from taxi_platform.jobs import BACKFILL_TAG, COLOUR_TAG, TRIGGER_TAG, job_name
from taxi_platform.partitions import MONTH_KEY_FORMAT, first_month, parse_month, partitions_for
from taxi_platform.schedules import automation_default_status, month_has_ended, partition_exists
from taxi_platform.schemas import COLOURS, SCHEMAS
from taxi_platform.secrets import mask_url, redact
from taxi_platform.settings import Settings
from taxi_platform.sources import TaxiSourceResource
from taxi_platform.sources.landing import GCSLanding, LocalLanding, landing_area
from taxi_platform.watchdog import fail_dead_runs, report_missed_retries

# ---------------------------------------------------------------------------------------------
# landing sensor
# ---------------------------------------------------------------------------------------------

LANDED_NAME_RE = re.compile(rf"^({'|'.join(COLOURS)})_tripdata_(\d{{4}}-\d{{2}})\.(?:csv|csv\.gz|parquet)$")
LANDED_NAMES = "<colour>_tripdata_YYYY-MM.csv[.gz] or .parquet"
LANDING_INTERVAL_SECONDS = 30


@dataclass(frozen=True)
class LandedName:
    colour: str
    month: str


def parse_landed_name(name: str) -> LandedName | None:
    """``yellow_tripdata_2019-01.csv.gz`` -> LandedName('yellow', '2019-01'); None otherwise."""
    match = LANDED_NAME_RE.match(name)
    if not match:
        return None
    try:
        parse_month(match.group(2))
    except ValueError:
        return None
    return LandedName(match.group(1), match.group(2))


def _in_progress(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/")) or rel.endswith((".part", ".tmp"))


def _settle_seconds(env: Mapping[str, str]) -> float:
    return float(env.get("TAXI_LANDING_SETTLE_SECONDS") or 10)


def evaluate_landing(context: SensorEvaluationContext, landing: Path | LocalLanding | GCSLanding,
                     now: float, settle_seconds: float) -> SensorResult | SkipReason:
    """One tick of the landing sensor (see the module docstring)."""
    area = LocalLanding(landing) if isinstance(landing, Path) else landing
    state = json.loads(context.cursor) if context.cursor else {}
    handled: dict[str, str] = state.get("files", {})  # requested or rejected: path -> signature
    noted: dict[str, str] = state.get("noted", {})  # reported but waiting: path -> signature
    if not area.exists():
        return SkipReason(f"the landing area {area} does not exist (yet)")
    run_requests, present, settling = [], set(), []
    for file in area.files():
        rel, signature = file.rel, file.signature
        if _in_progress(rel):
            continue
        present.add(rel)
        if handled.get(rel) == signature:
            continue
        landed = parse_landed_name(file.name)
        if landed is None:
            context.log.warning(
                f"landing: ignoring {rel}: the name does not match "
                f"{LANDED_NAMES} with colour one of {', '.join(COLOURS)}")
            handled[rel] = signature
            continue
        first = first_month(landed.colour)
        if landed.month < first:
            context.log.warning(f"landing: ignoring {rel}: {landed.month} is before the first "
                                f"{landed.colour} partition {first} (TAXI_SOURCE)")
            handled[rel] = signature
            continue
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        months = partitions_for(landed.colour)
        if month_has_ended(landed.month, at) and not partition_exists(landed.month, at, months):
            context.log.warning(f"landing: ignoring {rel}: {landed.month} is after the last {landed.colour} "
                                "partition of the source (TAXI_SOURCE=mirror publishes 2019-01 … 2021-07; "
                                "TAXI_SOURCE=tlc has every month)")
            handled[rel] = signature
            continue
        if not partition_exists(landed.month, at, months):
            if noted.get(rel) != signature:
                context.log.info(f"landing: {rel} waits: month {landed.month} has not ended, so its "
                                 "partition does not exist yet; it will be loaded once it does")
                noted[rel] = signature
            continue
        if area.needs_settling and now - file.mtime < settle_seconds:
            settling.append(rel)  # still being written, perhaps: taken on a later tick
            continue
        job = job_name(landed.colour)
        run_requests.append(RunRequest(
            run_key=f"{rel}@{signature}", job_name=job, partition_key=landed.month,
            tags={LANDED_FILE_TAG: file.uri, TRIGGER_TAG: "landing",
                  COLOUR_TAG: landed.colour}))
        handled[rel] = signature
        noted.pop(rel, None)
        context.log.info(f"landing: {rel} -> {job}, partition {landed.month}")
    # Forget files that are gone: dropping the same name again later is a new file.
    cursor = json.dumps({"files": {k: v for k, v in handled.items() if k in present},
                         "noted": {k: v for k, v in noted.items() if k in present}}, sort_keys=True)
    if run_requests:
        return SensorResult(run_requests=run_requests, cursor=cursor)
    reason = f"no new or changed file in {area}"
    if settling:
        reason += f" ready yet ({len(settling)} settling: {', '.join(settling[:3])})"
    return SensorResult(skip_reason=reason, cursor=cursor)


def build_landing_sensor(jobs: dict):
    @sensor(
        name="landing_sensor",
        jobs=list(jobs.values()),
        minimum_interval_seconds=LANDING_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=(f"A file {LANDED_NAMES} dropped in TAXI_LANDING_DIR "
                     "(new or changed) -> one run of that colour's job for that month, loading "
                     "that file. Badly named files are reported in this sensor's log."),
    )
    def landing_sensor(context: SensorEvaluationContext):
        settings = Settings.from_env()
        return evaluate_landing(context, landing_area(settings.landing, settings.gcp_project_id),
                                time.time(), _settle_seconds(os.environ))

    return landing_sensor


# ---------------------------------------------------------------------------------------------
# publication sensor
# ---------------------------------------------------------------------------------------------

MAX_PUBLICATION_REQUESTS = 12  # months requested per colour and tick while catching up


def next_month(key: str) -> str:
    first = parse_month(key)
    return (first + dt.timedelta(days=32)).replace(day=1).strftime(MONTH_KEY_FORMAT)


def evaluate_publication(context: SensorEvaluationContext, source: TaxiSourceResource,
                         now: dt.datetime) -> SensorResult:
    """One tick of the publication sensor (see the module docstring)."""
    requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    run_requests, waiting = [], []
    for colour in COLOURS:
        schema = SCHEMAS[colour]
        keys = partitions_for(colour).get_partition_keys(current_time=now.astimezone(dt.UTC))
        last_month = keys[-1] if keys else ""  # the last month the source has (or will have)
        done = context.instance.get_materialized_partitions(AssetKey(["raw", schema.table]))
        known = [m for m in (*done, requested.get(colour)) if m]
        month = next_month(max(known)) if known else last_month
        for _ in range(MAX_PUBLICATION_REQUESTS):
            if not last_month or month > last_month:
                break  # nothing to probe: every existing month is loaded or requested
            filename = source.filename(colour, month)
            try:
                published = source.is_published(colour, filename)
            except requests.RequestException as exc:
                context.log.warning(f"publication: could not probe {filename}: {exc}")
                waiting.append(f"{colour} {month} (probe failed)")
                break
            if not published:
                context.log.debug(f"publication: {filename} is not published yet")
                waiting.append(f"{colour} {month}")
                break
            run_requests.append(RunRequest(
                run_key=f"{colour}:{month}", job_name=job_name(colour), partition_key=month,
                tags={TRIGGER_TAG: "publication", COLOUR_TAG: colour}))
            context.log.info(f"publication: {filename} is published -> {job_name(colour)} {month}")
            requested[colour] = month
            month = next_month(month)
    cursor = json.dumps(requested, sort_keys=True)
    if run_requests:
        return SensorResult(run_requests=run_requests, cursor=cursor)
    return SensorResult(
        skip_reason="not published yet: " + (", ".join(waiting) or "nothing to wait for"),
        cursor=cursor)


def build_publication_sensor(jobs: dict, env: Mapping[str, str] | None = None):
    env = os.environ if env is None else env
    status = (DefaultSensorStatus.RUNNING if automation_default_status(env) == "running"
              else DefaultSensorStatus.STOPPED)

    @sensor(
        name="publication_sensor",
        jobs=list(jobs.values()),
        minimum_interval_seconds=int(env.get("TAXI_PUBLICATION_INTERVAL_SECONDS") or 3600),
        default_status=status,
        description=("Probes the source for the next unpublished month of each colour (one HEAD "
                     "request; 404 is quiet) and requests its run when the file appears."),
    )
    def publication_sensor(context: SensorEvaluationContext, source: TaxiSourceResource):
        return evaluate_publication(context, source, dt.datetime.now(dt.UTC))

    return publication_sensor


# ---------------------------------------------------------------------------------------------
# failure alerts
# ---------------------------------------------------------------------------------------------

DEFAULT_UI_URL = "http://127.0.0.1:3000"
MAX_ERROR_CHARS = 1500


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    job: str
    partition: str
    steps: tuple[str, ...]
    error: str
    link: str
    backfill: str | None


def _readable(message: str) -> str:
    """The error as a person wants to read it: a deliberate Failure without its class path."""
    return re.sub(r"^dagster\._core\.definitions\.events\.Failure: ", "", message.strip())


def describe_failed_run(run, step_failures: Sequence, run_failure_message: str | None,
                        ui_url: str) -> FailedRun:
    """The facts an alert carries, from the failed DagsterRun and its STEP_FAILURE events."""
    tags = run.tags
    partition = tags.get("dagster/partition")
    if not partition and tags.get("dagster/asset_partition_range_start"):
        partition = (f"{tags['dagster/asset_partition_range_start']}..."
                     f"{tags.get('dagster/asset_partition_range_end', '')}")
    steps = tuple(event.step_key for event in step_failures if event.step_key)
    errors = [_readable(event.event_specific_data.error.message) for event in step_failures
              if getattr(event.event_specific_data, "error", None)]
    error = errors[0] if errors else (run_failure_message or "the run failed (no step failed)")
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + "…"
    return FailedRun(run_id=run.run_id, job=run.job_name, partition=partition or "(none)",
                     steps=steps, error=error, link=f"{ui_url.rstrip('/')}/runs/{run.run_id}",
                     backfill=tags.get(BACKFILL_TAG))


def slack_payload(failed: FailedRun) -> dict:
    """A Slack incoming-webhook payload (``text`` for notifications, ``blocks`` for display);
    any Slack-compatible receiver (Mattermost, Rocket.Chat, Teams' Slack connector) takes it."""
    steps = ", ".join(failed.steps) or "(no step failed)"
    text = (f"taxi_platform run failed: {failed.job}, partition {failed.partition}, step {steps}: "
            f"{failed.error.splitlines()[0] if failed.error else ''} {failed.link}")
    fields = [f"*Job*\n{failed.job}", f"*Partition*\n{failed.partition}",
              f"*Failed step*\n{steps}", f"*Run*\n<{failed.link}|{failed.run_id[:8]}>"]
    if failed.backfill:
        fields.append(f"*Backfill*\n{failed.backfill}")
    return {
        "text": text,
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": f"Run failed: {failed.job} {failed.partition}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Error*\n```{failed.error}```"}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open the run"},
                 "url": failed.link}]},
        ],
    }


def plain_email(subject: str, body: str, sender: str, recipients: list[str]) -> EmailMessage:
    """An alert e-mail: ``[taxi_platform] <subject>`` with ``body`` as its text."""
    message = EmailMessage()
    message["Subject"] = f"[taxi_platform] {subject}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(body)
    return message


def email_message(failed: FailedRun, sender: str, recipients: list[str]) -> EmailMessage:
    return plain_email(
        f"run failed: {failed.job} {failed.partition}",
        f"Job:         {failed.job}\nPartition:   {failed.partition}\n"
        f"Failed step: {', '.join(failed.steps) or '(none)'}\n"
        + (f"Backfill:    {failed.backfill}\n" if failed.backfill else "")
        + f"Run:         {failed.link}\n\nError:\n{failed.error}\n", sender, recipients)


def send_alerts(failed: FailedRun, env: Mapping[str, str], log) -> list[str]:
    """Deliver to every configured channel; returns the channels used. Raises after trying all
    of them if any delivery failed."""
    return deliver_alert(f"run {failed.run_id}", slack_payload(failed),
                         lambda sender, recipients: email_message(failed, sender, recipients), env, log)


def deliver_alert(what: str, payload: dict, email: Callable[[str, list[str]], EmailMessage],
                  env: Mapping[str, str], log) -> list[str]:
    """Post ``payload`` to TAXI_ALERT_WEBHOOK_URL and send ``email(sender, recipients)`` over SMTP,
    each when configured, the webhook URL and SMTP password masked in every message; returns the
    channels used. Raises after trying all of them if any delivery failed. ``what``: the alert's
    subject in the log (``run <id>``)."""
    sent, problems = [], []
    webhook = (env.get("TAXI_ALERT_WEBHOOK_URL") or "").strip()
    if webhook:
        try:
            response = requests.post(webhook, json=payload, timeout=15)
            response.raise_for_status()
            sent.append("webhook")
        except requests.RequestException as exc:  # its text names the URL: the token
            problems.append(f"webhook {mask_url(webhook)}: {redact(str(exc), [webhook])}")
    host = (env.get("TAXI_ALERT_SMTP_HOST") or "").strip()
    recipients = [r.strip() for r in (env.get("TAXI_ALERT_EMAIL_TO") or "").split(",") if r.strip()]
    if host and recipients:
        try:
            _send_email(email, host, recipients, env)
            sent.append("email")
        except (OSError, smtplib.SMTPException) as exc:
            problems.append(f"e-mail via {host}: {redact(str(exc), [env.get('TAXI_ALERT_SMTP_PASSWORD') or ''])}")
    elif host or recipients:
        problems.append("e-mail needs both TAXI_ALERT_SMTP_HOST and TAXI_ALERT_EMAIL_TO")
    for problem in problems:
        log.error(f"alert for {what} not delivered: {problem}")
    if problems:
        raise RuntimeError(f"alert for {what} not delivered: " + "; ".join(problems))
    if sent:
        log.info(f"alert for {what} sent by {' and '.join(sent)}")
    return sent


def _send_email(email: Callable[[str, list[str]], EmailMessage], host: str, recipients: list[str],
                env: Mapping[str, str]):
    port = int(env.get("TAXI_ALERT_SMTP_PORT") or 25)
    security = (env.get("TAXI_ALERT_SMTP_SECURITY")
                or {465: "ssl", 587: "starttls"}.get(port, "none")).lower()
    sender = env.get("TAXI_ALERT_EMAIL_FROM") or "taxi-platform@localhost"
    user, password = env.get("TAXI_ALERT_SMTP_USER"), env.get("TAXI_ALERT_SMTP_PASSWORD") or ""
    if security == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=30, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, port, timeout=30)
    with client:
        if security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if user:
            client.login(user, password)
        client.send_message(email(sender, recipients))


def alert_on_failure(context: RunFailureSensorContext, env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    failed = describe_failed_run(context.dagster_run, context.get_step_failure_events(),
                                 context.failure_event.message,
                                 env.get("TAXI_DAGSTER_UI_URL") or DEFAULT_UI_URL)
    return send_alerts(failed, env, context.log)


@run_failure_sensor(
    name="failure_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    description=("Posts a Slack-compatible message to TAXI_ALERT_WEBHOOK_URL (and an e-mail when "
                 "TAXI_ALERT_SMTP_HOST / TAXI_ALERT_EMAIL_TO are set) for every failed run: job, "
                 "partition, failed step, error, link. Does nothing when they are unset."),
)
def failure_alert_sensor(context: RunFailureSensorContext):
    alert_on_failure(context)


# ---------------------------------------------------------------------------------------------
# dead runs
# ---------------------------------------------------------------------------------------------


def build_dead_run_sensor(env: Mapping[str, str] | None = None):
    env = os.environ if env is None else env

    @sensor(
        name="dead_run_sensor",
        minimum_interval_seconds=int(env.get("TAXI_WATCHDOG_INTERVAL_SECONDS") or 60),
        default_status=DefaultSensorStatus.RUNNING,
        description=("Marks failed every run whose worker process died on this host (killed, out of "
                     "memory) and frees its warehouse slots, so that no dead run blocks the pool; "
                     "the instance's run retries then re-run it. A failed run that Dagster was to "
                     "retry and did not gets its failure reported again (taxi_platform/watchdog.py)."),
    )
    def dead_run_sensor(context: SensorEvaluationContext):
        failed = fail_dead_runs(context.instance, context.log)
        missed = report_missed_retries(context.instance, context.log)
        said = ([f"marked failed: {', '.join(failed)}"] if failed else []) + (
            [f"retry missed by Dagster, failure reported again: {', '.join(missed)}"] if missed else [])
        return SkipReason("; ".join(said) or "no dead run")

    return dead_run_sensor


def build_sensors(jobs: dict) -> list:
    return [build_landing_sensor(jobs), build_publication_sensor(jobs), failure_alert_sensor,
            build_dead_run_sensor()]
