"""The alert contents: what a failed run's message says, built from plain run facts."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from taxi_platform.sensors import (
    MAX_ERROR_CHARS,
    describe_failed_run,
    email_message,
    send_alerts,
    slack_payload,
)


def run(tags, run_id="0123456789abcdef"):
    return SimpleNamespace(run_id=run_id, job_name="green_tripdata_job", tags=tags)


def step_failure(step, message):
    return SimpleNamespace(step_key=step,
                           event_specific_data=SimpleNamespace(error=SimpleNamespace(message=message)))


def test_a_single_run_backfill_names_its_partition_range_and_its_backfill():
    failed = describe_failed_run(
        run({"dagster/asset_partition_range_start": "2019-01", "dagster/asset_partition_range_end": "2019-12",
             "dagster/backfill": "qwertyui"}),
        [step_failure("bronze__green_tripdata", "dagster._core.definitions.events.Failure: bad header\n")],
        "run failed", "http://ui:3000")
    assert failed.partition == "2019-01...2019-12"
    assert failed.error == "bad header"
    assert failed.link == "http://ui:3000/runs/0123456789abcdef"
    fields = [f["text"] for f in slack_payload(failed)["blocks"][1]["fields"]]
    assert fields[-1] == "*Backfill*\nqwertyui"


def test_a_run_that_failed_outside_any_step_reports_the_run_failure_message():
    failed = describe_failed_run(run({}), [], "Run worker crashed", "http://ui:3000")
    assert failed.partition == "(none)" and failed.steps == () and failed.error == "Run worker crashed"
    assert "step (no step failed): Run worker crashed" in slack_payload(failed)["text"]


def test_a_huge_error_is_cut_so_the_message_stays_postable():
    failed = describe_failed_run(run({"dagster/partition": "2019-01"}),
                                 [step_failure("raw__green_tripdata", "x" * 10_000)], None, "http://ui")
    assert len(failed.error) == MAX_ERROR_CHARS + 1 and failed.error.endswith("…")


def test_the_email_carries_the_same_facts_as_the_chat_message():
    failed = describe_failed_run(run({"dagster/partition": "2019-01"}),
                                 [step_failure("silver__green_tripdata", "boom")], None, "http://ui")
    message = email_message(failed, "from@example.org", ["a@example.org", "b@example.org"])
    assert message["To"] == "a@example.org, b@example.org"
    assert message["Subject"] == "[taxi_platform] run failed: green_tripdata_job 2019-01"
    assert "Failed step: silver__green_tripdata" in message.get_content()


def test_with_no_channel_configured_nothing_is_sent_and_half_an_smtp_setting_is_an_error():
    failed = describe_failed_run(run({}), [], "x", "http://ui")
    log = logging.getLogger("test")
    assert send_alerts(failed, {}, log) == []
    with pytest.raises(RuntimeError, match="needs both TAXI_ALERT_SMTP_HOST and TAXI_ALERT_EMAIL_TO"):
        send_alerts(failed, {"TAXI_ALERT_SMTP_HOST": "localhost"}, log)
