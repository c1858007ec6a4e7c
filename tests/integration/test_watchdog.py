"""The watchdog's repair of a retry Dagster missed, on a real instance (SQLite storage, as the
embedded default): Dagster stores a run's failure event before it marks the run failed, and its
retry daemon can read the event in between and pass the run by for good. A failed run tagged to be
retried that has no retry a minute on gets its failure reported once more, which the daemon then
reads with the run failed. (The whole story, a SIGKILLed run retried to a clean month by the
daemon: tests/e2e/test_dead_runs.py.)"""

from __future__ import annotations

from datetime import timedelta

from dagster import DagsterInstance, job, op
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, WILL_RETRY_TAG
from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry

from taxi_platform.watchdog import RETRY_REPORTED_TAG, report_missed_retries

RETRIES = {"run_retries": {"enabled": True, "max_retries": 2}}


@op
def nothing() -> None:
    pass


@job
def a_job() -> None:
    nothing()


def _failed_run(instance: DagsterInstance, **kwargs):
    run = instance.create_run_for_job(a_job, **kwargs)
    instance.report_run_failed(run, "its worker was killed")
    return instance.get_run_by_id(run.run_id)


def _failure_events(instance: DagsterInstance, run_id: str) -> list:
    return [e for e in instance.all_logs(run_id) if e.dagster_event and e.dagster_event.is_run_failure]


def test_a_failed_run_dagster_was_to_retry_and_did_not_has_its_failure_reported_once_more(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path), overrides=RETRIES) as instance:
        run = _failed_run(instance)
        assert run.tags[WILL_RETRY_TAG] == "true"
        assert report_missed_retries(instance) == []  # the retry daemon's minute is not over
        # nor is a run that failed before the hour looked at
        assert report_missed_retries(instance, after=timedelta(0), within=timedelta(0)) == []
        assert report_missed_retries(instance, after=timedelta(0)) == [run.run_id]
        reported = instance.get_run_by_id(run.run_id)
        assert reported.tags[RETRY_REPORTED_TAG] == "true"
        # a second failure event, read by the daemon with the run failed and to be retried
        assert len(_failure_events(instance, run.run_id)) == 2
        assert should_retry(reported, instance)
        assert report_missed_retries(instance, after=timedelta(0)) == []  # once only
        assert len(_failure_events(instance, run.run_id)) == 2


def test_a_retried_run_and_a_run_not_to_be_retried_are_left_alone(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path), overrides=RETRIES) as instance:
        retried = _failed_run(instance)
        retry = instance.create_run_for_job(a_job, parent_run_id=retried.run_id, root_run_id=retried.run_id,
                                            tags={PARENT_RUN_ID_TAG: retried.run_id})
        assert retry.tags[PARENT_RUN_ID_TAG] == retried.run_id
        not_to_retry = _failed_run(instance)
        instance.add_run_tags(not_to_retry.run_id, {WILL_RETRY_TAG: "false"})
        assert report_missed_retries(instance, after=timedelta(0)) == []
        assert len(_failure_events(instance, retried.run_id)) == len(_failure_events(instance, not_to_retry.run_id)) == 1
    (tmp_path / "no-retries").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "no-retries")) as instance:  # run retries off
        _failed_run(instance)
        assert report_missed_retries(instance, after=timedelta(0)) == []
