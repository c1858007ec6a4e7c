"""What is due when: the freshness policies the Definitions declare (silver and the mart), their
settings, the instance files that switch the daemon's evaluation on, and the late-asset alert."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from dagster import AssetKey

from taxi_platform.definitions import build_definitions
from taxi_platform.freshness import mart_due_cron, silver_due_cron, silver_freshness_policy
from taxi_platform.freshness_alerts import LateAsset, freshness_email, freshness_payload
from taxi_platform.instance import REPO

SILVER = {AssetKey(["silver", "yellow_tripdata"]), AssetKey(["silver", "green_tripdata"])}
MART = AssetKey(["marts", "dm_monthly_zone_revenue"])
FRESHNESS_VARIABLES = ("TAXI_SOURCE", "TAXI_SILVER_DUE_CRON", "TAXI_MART_DUE_CRON", "TAXI_SCHEDULE_TIMEZONE")


def declared_policies(monkeypatch, **env) -> dict:
    for name in FRESHNESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    graph = build_definitions().resolve_asset_graph()
    return {key: graph.get(key).freshness_policy for key in graph.get_all_asset_keys()
            if graph.get(key).freshness_policy is not None}


def test_under_the_tlc_source_both_silver_assets_and_the_mart_declare_their_deadlines(monkeypatch):
    policies = declared_policies(monkeypatch, TAXI_SOURCE="tlc")
    assert set(policies) == SILVER | {MART}
    for key in SILVER:
        assert policies[key].deadline_cron == "0 12 10 * *"  # month M by the 10th of M+3
        assert policies[key].lower_bound_delta == dt.timedelta(days=28)  # since the deadline before
        assert policies[key].timezone == "UTC"
    assert policies[MART].deadline_cron == "0 12 11 * *"  # a day after silver's
    assert policies[MART].lower_bound_delta == dt.timedelta(days=28)


def test_the_frozen_mirror_declares_no_freshness_unless_a_deadline_is_set(monkeypatch):
    assert declared_policies(monkeypatch, TAXI_SOURCE="mirror") == {}
    policies = declared_policies(monkeypatch, TAXI_SOURCE="mirror", TAXI_SILVER_DUE_CRON="30 6 3 * *",
                                 TAXI_SCHEDULE_TIMEZONE="America/New_York")
    assert set(policies) == SILVER | {MART}
    assert policies[MART].deadline_cron == "30 6 4 * *"
    assert {p.timezone for p in policies.values()} == {"America/New_York"}


def test_none_switches_a_policy_off_and_the_marts_deadline_can_be_set_on_its_own(monkeypatch):
    assert set(declared_policies(monkeypatch, TAXI_SOURCE="tlc", TAXI_MART_DUE_CRON="none")) == SILVER
    assert set(declared_policies(monkeypatch, TAXI_SOURCE="tlc", TAXI_SILVER_DUE_CRON="none")) == set()
    policies = declared_policies(monkeypatch, TAXI_SOURCE="tlc", TAXI_MART_DUE_CRON="0 6 * * *")
    assert policies[MART].deadline_cron == "0 6 * * *"
    assert policies[MART].lower_bound_delta == dt.timedelta(days=1)  # daily: since the day before


def test_a_deadline_that_is_not_a_cron_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match="TAXI_SILVER_DUE_CRON='the 10th' is not a cron string"):
        silver_due_cron({"TAXI_SILVER_DUE_CRON": "the 10th"})
    with pytest.raises(ValueError, match="TAXI_MART_DUE_CRON='61 \\* \\* \\* \\*' is not a cron string"):
        mart_due_cron({"TAXI_SOURCE": "tlc", "TAXI_MART_DUE_CRON": "61 * * * *"})
    with pytest.raises(ValueError, match="set TAXI_MART_DUE_CRON too"):  # a day after "every hour"?
        mart_due_cron({"TAXI_SILVER_DUE_CRON": "0 * * * *"})
    with pytest.raises(ValueError, match="TAXI_SCHEDULE_TIMEZONE='Mars/Olympus' is not an IANA timezone"):
        silver_freshness_policy("tlc", {"TAXI_SCHEDULE_TIMEZONE": "Mars/Olympus"})


def test_both_instance_files_switch_the_daemons_freshness_evaluation_on():
    for name in ("dagster.yaml", "dagster.dev.yaml"):
        assert yaml.safe_load((REPO / name).read_text())["freshness"] == {"enabled": True}


def test_the_late_asset_email_carries_the_same_facts_as_the_chat_message():
    late = LateAsset(key="silver/green_tripdata", since=dt.datetime(2024, 7, 10, 12, 1, tzinfo=dt.UTC),
                     due="materialized within the 28 days before every deadline `0 12 10 * *` (UTC)",
                     newest_month="2024-03", last_materialized=dt.datetime(2024, 5, 22, 15, tzinfo=dt.UTC),
                     link="http://127.0.0.1:3000/assets/silver/green_tripdata")
    fields = [f["text"] for f in freshness_payload(late)["blocks"][1]["fields"]]
    assert fields == ["*Asset*\nsilver/green_tripdata", "*Failing since*\n2024-07-10 12:01 UTC",
                      f"*Due*\n{late.due}", "*Last materialized*\n2024-05-22 15:00 UTC", "*Newest month*\n2024-03"]
    body = freshness_email(late, "from@example.org", ["a@example.org"]).get_content()
    for fact in ("silver/green_tripdata", "2024-07-10 12:01 UTC", late.due, "2024-03", "2024-05-22 15:00 UTC",
                 late.link):
        assert fact in body
