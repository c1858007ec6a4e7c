"""Dead runs never hold the warehouse: a run whose worker process died (SIGKILL, out of memory, a
machine restart) is marked failed and its pool slots are freed, automatically.

Dagster's run monitoring cannot tell a dead worker of the default run launcher from a live one,
and nothing at all watches a run started by ``dagster asset materialize``: such a run stays
``STARTED`` for ever and keeps its ``taxi_warehouse`` slot, so every later run waits "blocked by
limit for pool taxi_warehouse". So every run says which process runs it, and the platform checks:

- **the worker tag**: when a run's resources are set up (in-process execution: once, before any
  step claims a pool slot), the run is tagged ``taxi/worker = <host>:<pid>:<start time>:<run id>``
  (the run id, because a retry copies its parent's tags);
- **the check** (:func:`fail_dead_runs`): a ``STARTED`` or ``CANCELING`` run whose worker is on
  this host and is not running any more (no such process, or another one that reused the pid)
  is reported failed with the reason, and its concurrency slots are freed. A worker on another
  host is never judged. Runs that ended still holding slots (a killed worker whose code server
  lived on, which marks the run failed but keeps its slots) get them freed too;
- **who checks**: every run, as it starts (so a CLI run after a killed CLI run goes ahead with no
  daemon at all), and the sensor ``dead_run_sensor`` every minute under the daemon. A run the
  daemon launched is then retried by the instance's run retries (``run_retries`` in
  dagster.yaml), which re-executes it from the step that died;
- **a retry Dagster missed** (:func:`report_missed_retries`, by the sensor): Dagster stores a
  run's failure event before it marks the run failed and tags it ``dagster/will_retry``. The
  daemon that retries runs reads failure events in order; one it reads in between finds a run not
  failed yet, skips it and moves past it, so that run is never retried (seen in CI, on a loaded
  machine, after a SIGKILL). A failed run tagged ``will_retry=true`` that still has no retry a
  minute later gets its failure reported once more; the daemon then retries it (Dagster never
  makes two retries of one run).
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

import psutil
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, RUN_FAILURE_REASON_TAG, WILL_RETRY_TAG

WORKER_TAG = "taxi/worker"
WATCHED_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
RETRY_REPORTED_TAG = "taxi/missed_retry_reported"
# How long the run retry daemon gets before a failed run's missing retry counts as missed: it
# reads the failure events every few seconds.
MISSED_RETRY_AFTER = timedelta(seconds=60)
# How far back the sensor looks: it runs every minute beside that daemon, so a missed retry is
# found within minutes; the runs retried as they should be (most failed runs) are not read again
# on every tick for ever.
MISSED_RETRY_WITHIN = timedelta(hours=1)


def worker_identity(run_id: str) -> str:
    """``<host>:<pid>:<process start time>:<run id>`` for this process running ``run_id``."""
    started = int(psutil.Process().create_time())
    return f"{socket.gethostname()}:{os.getpid()}:{started}:{run_id}"


def worker_is_dead(tag: str | None, run_id: str) -> bool:
    """True only when the tag names a worker of ``run_id`` on this host that no longer runs."""
    if not tag:
        return False
    host, _, rest = tag.partition(":")
    pid, _, rest = rest.partition(":")
    started, _, tagged_run = rest.partition(":")
    if host != socket.gethostname() or tagged_run != run_id or not pid.isdigit():
        return False  # another machine's worker, or a tag copied from a parent run
    try:
        return int(psutil.Process(int(pid)).create_time()) != int(started)  # pid reused
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, ValueError):
        return False


def fail_dead_runs(instance: DagsterInstance, log=None) -> list[str]:
    """Mark failed every watched run whose worker died on this host and free its pool slots;
    returns their run ids."""
    failed = []
    for run in instance.get_runs(RunsFilter(statuses=WATCHED_STATUSES)):
        tag = run.tags.get(WORKER_TAG)
        if not worker_is_dead(tag, run.run_id):
            continue
        current = instance.get_run_by_id(run.run_id)  # the code server may have failed it meanwhile
        if current is None or current.status not in WATCHED_STATUSES:
            continue
        pid = tag.split(":")[1]
        message = (f"The run's worker process (pid {pid} on {socket.gethostname()}) is gone: it was "
                   "killed or crashed while the run was in progress. Marked failed by the platform's "
                   "watchdog, which freed its warehouse slots; the instance's run retries re-run it.")
        instance.report_run_failed(run, message, JobFailureData(
            error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION))
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        if log:
            log.warning(f"run {run.run_id} ({run.job_name}, partition {run.tags.get('dagster/partition', '-')}): "
                        f"worker pid {pid} is gone; marked failed, slots freed")
        failed.append(run.run_id)
    free_slots_of_ended_runs(instance, log)
    return failed


def free_slots_of_ended_runs(instance: DagsterInstance, log=None) -> None:
    """Give back at once the pool slots still held by runs that have ended (a run worker killed
    while the code server lived on is marked failed by the code server, which does not free its
    slots; the instance would free them only ``free_slots_after_run_end_seconds`` later)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    holding = storage.get_concurrency_run_ids()
    if not holding:
        return
    for run in instance.get_runs(RunsFilter(run_ids=list(holding))):
        if run.is_finished:
            storage.free_concurrency_slots_for_run(run.run_id)
            if log:
                log.info(f"run {run.run_id} ended ({run.status.value}) holding pool slots: freed")


def claim_run(instance: DagsterInstance | None, run, log=None) -> None:
    """At a run's start: tag it with this worker, then fail the dead runs on this host (whose
    slots this run may be about to wait for)."""
    if instance is None or run is None:
        return
    me = worker_identity(run.run_id)
    if run.tags.get(WORKER_TAG) != me:
        instance.add_run_tags(run.run_id, {WORKER_TAG: me})
    fail_dead_runs(instance, log)


class ClaimsItsRun:
    """Mixin of the platform's resources: setting one up for a run claims the run for this
    worker (see :func:`claim_run`)."""

    def setup_for_execution(self, context) -> None:
        claim_run(context.instance, context.run, context.log)


def report_missed_retries(instance: DagsterInstance, log=None, after: timedelta = MISSED_RETRY_AFTER,
                          within: timedelta = MISSED_RETRY_WITHIN) -> list[str]:
    """Report again, once, the failure of each run that Dagster means to retry (``will_retry``)
    but has not retried ``after`` its failure, among the runs that failed ``within`` before that
    (see the module docstring); returns their run ids."""
    if not instance.run_retries_enabled:
        return []
    reported = []
    ended_before = datetime.now(UTC) - after
    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags={WILL_RETRY_TAG: "true"},
                                            updated_before=ended_before, updated_after=ended_before - within),
                                 limit=100):
        if run.tags.get(RETRY_REPORTED_TAG) or instance.get_runs(
                RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}), limit=1):
            continue
        instance.add_run_tags(run.run_id, {RETRY_REPORTED_TAG: "true"})
        reason = run.tags.get(RUN_FAILURE_REASON_TAG)
        instance.report_run_failed(
            run, "The run failed and Dagster was to retry it, but its retry daemon read the failure "
                 "before the run was marked failed and passed it by. Reported again by the platform's "
                 "watchdog, so that the run retries re-run it.",
            JobFailureData(error=None, failure_reason=RunFailureReason(reason) if reason else RunFailureReason.UNKNOWN))
        if log:
            log.warning(f"run {run.run_id} ({run.job_name}, partition {run.tags.get('dagster/partition', '-')}): "
                        "failed, to be retried, and not retried: failure reported again")
        reported.append(run.run_id)
    return reported
