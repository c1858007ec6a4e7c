"""Freshness with Dagster's own machinery: the platform's Definitions loaded as the daemon loads a
code location, the daemon's freshness loop (FreshnessDaemon.run_iteration) evaluating their
policies at frozen times on a real instance (the repository's dagster.dev.yaml in a temporary
DAGSTER_HOME), and freshness_alert_sensor ticking after it, posting to a local webhook and mailing
a local SMTP server. Materializations are recorded as the runs record them (an
ASSET_MATERIALIZATION event at that time), without loading data: freshness reads nothing else."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance, build_sensor_context
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon

from taxi_platform.definitions import build_definitions
from taxi_platform.freshness_alerts import freshness_alert_sensor
from taxi_platform.instance import REPO, prepare_instance

YELLOW, GREEN = AssetKey(["silver", "yellow_tripdata"]), AssetKey(["silver", "green_tripdata"])
MART = AssetKey(["marts", "dm_monthly_zone_revenue"])
PASS, FAIL = FreshnessState.PASS, FreshnessState.FAIL


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


class Platform:
    """The code location as the daemon sees it, its freshness loop and the alert sensor."""

    def __init__(self, instance: DagsterInstance, workspace: WorkspaceProcessContext):
        self.instance, self.workspace = instance, workspace
        self.defs, self.daemon, self.cursor = build_definitions(), FreshnessDaemon(), None

    def materialize(self, key: AssetKey, at: dt.datetime, month: str | None = None):
        with freeze_time(at):
            self.instance.report_runless_asset_event(AssetMaterialization(key, partition=month))

    def evaluate(self, at: dt.datetime):
        """One iteration of the daemon's freshness loop at ``at``."""
        with freeze_time(at):
            list(self.daemon.run_iteration(self.workspace))

    def state(self, key: AssetKey) -> FreshnessState:
        return self.instance.get_freshness_state_records([key])[key].freshness_state

    def tick(self, at: dt.datetime):
        """One tick of freshness_alert_sensor at ``at``, carrying its cursor as the daemon does."""
        with freeze_time(at):
            context = build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs)
            result = freshness_alert_sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result


@pytest.fixture
def platform(platform_env, monkeypatch):
    """The TLC source with the default deadlines, on a real instance made from dagster.dev.yaml."""
    monkeypatch.setenv("TAXI_SOURCE", "tlc")
    for key in ("TAXI_SILVER_DUE_CRON", "TAXI_MART_DUE_CRON", "TAXI_SCHEDULE_TIMEZONE",
                "TAXI_ALERT_WEBHOOK_URL", "TAXI_ALERT_SMTP_HOST", "TAXI_ALERT_EMAIL_TO"):
        monkeypatch.delenv(key, raising=False)
    prepare_instance(platform_env.dagster_home)
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=str(REPO / "taxi_platform" / "definitions.py"), attribute="defs",
                             working_directory=str(REPO)),
        location_name="taxi_platform")
    with DagsterInstance.get() as instance, \
            WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as workspace:
        assert instance.freshness_enabled
        yield Platform(instance, workspace)


@pytest.fixture
def channels(webhook, smtp, monkeypatch):
    """Both alert channels configured: the local webhook and the local SMTP server."""
    (posts, url), (mails, port) = webhook, smtp
    monkeypatch.setenv("TAXI_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("TAXI_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TAXI_ALERT_SMTP_PORT", str(port))
    monkeypatch.setenv("TAXI_ALERT_EMAIL_TO", "oncall@example.org")
    monkeypatch.setenv("TAXI_DAGSTER_UI_URL", "http://dagster.example:3000")
    return posts, mails


def load_march_on_its_publication_day(platform):
    """2024-03, published by the TLC on 2024-05-22, loaded that day for both colours; the mart follows."""
    for key in (YELLOW, GREEN):
        platform.materialize(key, utc(2024, 5, 22, 15), "2024-03")
    platform.materialize(MART, utc(2024, 5, 22, 15, 20))


def test_a_silver_month_missing_at_its_deadline_fails_freshness_and_alerts_once_over_two_ticks(
        platform, channels):
    posts, mails = channels
    load_march_on_its_publication_day(platform)
    platform.evaluate(utc(2024, 6, 10, 12, 1))
    assert [platform.state(k) for k in (YELLOW, GREEN, MART)] == [PASS, PASS, PASS]
    platform.tick(utc(2024, 6, 10, 12, 2))
    assert posts.posts == [] and mails.messages == []

    # 2024-04 (published 2024-06-20) arrives for green only: yellow's month is missing at the
    # deadline of 2024-07-10 12:00.
    platform.materialize(GREEN, utc(2024, 6, 20, 10), "2024-04")
    platform.materialize(MART, utc(2024, 6, 20, 10, 20))
    platform.evaluate(utc(2024, 7, 10, 11, 59))
    assert platform.state(YELLOW) == PASS
    platform.evaluate(utc(2024, 7, 10, 12, 1))
    assert [platform.state(k) for k in (YELLOW, GREEN, MART)] == [FAIL, PASS, PASS]

    platform.tick(utc(2024, 7, 10, 12, 2))
    platform.evaluate(utc(2024, 7, 10, 12, 31))  # the loop goes on: still failing, nothing new
    second = platform.tick(utc(2024, 7, 10, 12, 32))
    assert second.skip_message == "no freshness change"

    (post,) = posts.posts
    link = "http://dagster.example:3000/assets/silver/yellow_tripdata"
    assert post["json"]["text"] == (
        "taxi_platform asset late: silver/yellow_tripdata is failing its freshness policy since "
        "2024-07-10 12:01 UTC (due: materialized within the 28 days before every deadline "
        "`0 12 10 * *` (UTC)); newest month 2024-03, last materialized 2024-05-22 15:00 UTC. " + link)
    assert post["json"]["blocks"][-1]["elements"][0]["url"] == link
    ((envelope, message),) = mails.messages
    assert len(envelope["to"]) == 1 and "<oncall@example.org>" in envelope["to"][0]
    assert message["Subject"] == "[taxi_platform] asset late: silver/yellow_tripdata"
    assert "Newest month:      2024-03" in message.get_payload()


def test_a_mart_not_rebuilt_a_day_after_silvers_deadline_fails_and_alerts_once_then_passes_again(
        platform, channels):
    posts, _ = channels
    load_march_on_its_publication_day(platform)
    for key in (YELLOW, GREEN):  # 2024-04 loads on time, but dbt does not rebuild the mart
        platform.materialize(key, utc(2024, 6, 20, 10), "2024-04")
    platform.evaluate(utc(2024, 7, 10, 12, 1))
    assert [platform.state(k) for k in (YELLOW, GREEN, MART)] == [PASS, PASS, PASS]
    platform.evaluate(utc(2024, 7, 11, 12, 1))
    assert platform.state(MART) == FAIL
    platform.tick(utc(2024, 7, 11, 12, 2))

    platform.materialize(MART, utc(2024, 7, 11, 13))  # rebuilt by hand
    platform.evaluate(utc(2024, 7, 11, 13, 1))
    assert platform.state(MART) == PASS
    platform.tick(utc(2024, 7, 11, 13, 2))

    (post,) = posts.posts
    assert post["json"]["text"].startswith(
        "taxi_platform asset late: marts/dm_monthly_zone_revenue is failing its freshness policy since "
        "2024-07-11 12:01 UTC (due: materialized within the 28 days before every deadline `0 12 11 * *` (UTC)); "
        "last materialized 2024-05-22 15:20 UTC.")


def test_a_failed_delivery_fails_the_tick_and_the_next_tick_sends_the_alert(platform, webhook, monkeypatch):
    posts, url = webhook
    monkeypatch.setenv("TAXI_ALERT_WEBHOOK_URL", url)
    platform.materialize(YELLOW, utc(2024, 5, 22, 15), "2024-03")
    platform.evaluate(utc(2024, 7, 10, 12, 1))
    assert platform.state(YELLOW) == FAIL
    posts.status = 500
    with pytest.raises(Exception) as refused:
        platform.tick(utc(2024, 7, 10, 12, 2))
    reason = str(refused.value) + str(refused.value.__cause__)
    assert "alert for late asset silver/yellow_tripdata not delivered: webhook http://127.0.0.1/***" in reason
    assert "/hooks/taxi" not in reason  # the webhook's path is its token
    posts.status = 200
    platform.tick(utc(2024, 7, 10, 12, 3))
    platform.tick(utc(2024, 7, 10, 12, 4))
    assert [p["json"]["blocks"][0]["text"]["text"] for p in posts.posts] == [
        "Asset late: silver/yellow_tripdata", "Asset late: silver/yellow_tripdata"]  # refused, then sent


def tlc_publications(tlc_dir) -> list[dt.datetime]:
    """When the TLC published each yellow month of 2022-10 … 2024-05 (published-metadata)."""
    times = []
    for year in (2022, 2023, 2024):
        with open(tlc_dir / "published-metadata" / f"yellow_tripmetadata_{year}.csv") as rows:
            times += [dt.datetime.fromisoformat(r["file_modification_time"]) for r in csv.DictReader(rows)
                      if (year, int(r["file_month"])) >= (2022, 10)]
    return sorted(times)


def test_the_default_deadline_passes_every_month_the_tlc_published_on_time_and_fails_the_late_2022_12(
        platform, tlc_dir):
    """Replays the TLC's real publication times (each loaded the moment it appeared) through the
    default policy: at every deadline from 2023-01-10 to 2024-08-10 silver passes, except on
    2023-03-10, when 2022-12 was 68 days old and still unpublished (the TLC put it out on
    2023-03-20, 78 days after the month ended, with 2023-01)."""
    publications = tlc_publications(tlc_dir)
    states = {}
    for year, month in [(2023, m) for m in range(1, 13)] + [(2024, m) for m in range(1, 9)]:
        deadline = utc(year, month, 10, 12)
        while publications and publications[0] < deadline:
            platform.materialize(YELLOW, publications.pop(0))
        platform.evaluate(deadline + dt.timedelta(minutes=1))
        states[deadline.date().isoformat()] = platform.state(YELLOW)
    assert [day for day, state in states.items() if state != PASS] == ["2023-03-10"]
