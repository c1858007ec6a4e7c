"""The failure-alert sensor on a real failed run: the Slack-compatible payload reaches a local
HTTP server, the e-mail reaches a local SMTP server, nothing is sent when nothing is set, and a
delivery that fails makes the sensor tick fail with the reason."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, Definitions, build_run_status_sensor_context

from taxi_platform.assets import ingest_assets
from taxi_platform.jobs import build_colour_jobs
from taxi_platform.resources import resources_from_env
from taxi_platform.sensors import failure_alert_sensor


@pytest.fixture
def failed_run(platform_env, monkeypatch):
    """A real failed run: yellow 2019-02 is not on the mirror, so the raw step fails (404)."""
    for key in ("TAXI_ALERT_WEBHOOK_URL", "TAXI_ALERT_SMTP_HOST", "TAXI_ALERT_EMAIL_TO"):
        monkeypatch.delenv(key, raising=False)
    jobs = build_colour_jobs(ingest_assets)
    defs = Definitions(assets=ingest_assets, jobs=list(jobs.values()), resources=resources_from_env())
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def("yellow_tripdata_job").execute_in_process(
            partition_key="2019-02", instance=instance, raise_on_error=False)
        assert not result.success
        yield instance, result


def alert(failed_run):
    instance, result = failed_run
    context = build_run_status_sensor_context(
        sensor_name="failure_alert_sensor", dagster_event=result.get_run_failure_event(),
        dagster_instance=instance, dagster_run=result.dagster_run).for_run_failure()
    return failure_alert_sensor(context)


def test_a_failed_run_posts_job_partition_step_error_and_link_to_the_webhook(
        failed_run, webhook, monkeypatch):
    handler, url = webhook
    monkeypatch.setenv("TAXI_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("TAXI_DAGSTER_UI_URL", "http://dagster.example:3000/")
    alert(failed_run)
    (post,) = handler.posts
    assert post["path"] == "/hooks/taxi" and post["type"] == "application/json"
    payload = post["json"]
    run_id = failed_run[1].run_id
    link = f"http://dagster.example:3000/runs/{run_id}"
    assert payload["text"].startswith(
        "taxi_platform run failed: yellow_tripdata_job, partition 2019-02, step raw__yellow_tripdata: "
        "yellow_tripdata_2019-02.csv.gz is not published at ")
    assert payload["text"].endswith(link)
    header, facts, error, actions = payload["blocks"]
    assert header["text"]["text"] == "Run failed: yellow_tripdata_job 2019-02"
    assert [f["text"] for f in facts["fields"]] == [
        "*Job*\nyellow_tripdata_job", "*Partition*\n2019-02", "*Failed step*\nraw__yellow_tripdata",
        f"*Run*\n<{link}|{run_id[:8]}>"]
    assert "yellow_tripdata_2019-02.csv.gz is not published" in error["text"]["text"]
    assert actions["elements"][0]["url"] == link


def test_nothing_is_sent_and_nothing_fails_when_no_alert_channel_is_set(failed_run, webhook):
    handler, _ = webhook
    alert(failed_run)
    assert handler.posts == []


def test_a_failed_run_is_mailed_when_smtp_is_set(failed_run, smtp, monkeypatch):
    handler, port = smtp
    monkeypatch.setenv("TAXI_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TAXI_ALERT_SMTP_PORT", str(port))
    monkeypatch.setenv("TAXI_ALERT_EMAIL_TO", "oncall@example.org, data@example.org")
    monkeypatch.setenv("TAXI_ALERT_EMAIL_FROM", "dagster@example.org")
    alert(failed_run)
    ((envelope, message),) = handler.messages
    assert len(envelope["to"]) == 2
    assert message["Subject"] == "[taxi_platform] run failed: yellow_tripdata_job 2019-02"
    assert message["From"] == "dagster@example.org"
    body = message.get_payload()
    assert "Failed step: raw__yellow_tripdata" in body and "is not published" in body
    assert f"/runs/{failed_run[1].run_id}" in body


def test_a_webhook_that_refuses_the_alert_fails_the_sensor_tick_with_the_reason(
        failed_run, webhook, monkeypatch):
    handler, url = webhook
    handler.status = 500
    monkeypatch.setenv("TAXI_ALERT_WEBHOOK_URL", url)
    with pytest.raises(RuntimeError, match="not delivered: webhook .*500"):
        alert(failed_run)
