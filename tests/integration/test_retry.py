"""Retries, through Dagster, against a local HTTP server: a flaky server (503s) is retried by the
download itself, the one retry layer of a download; a download that gives up, and a 404, fail the
step once, at once, with no step retry around them. A code error fails at once too; a lost
connection is retried by the step's policy. The dbt steps and GX checks have the same policy and
the warehouse pool."""

from __future__ import annotations

import pytest
from dagster import Backoff, DagsterEventType, DagsterInstance, Jitter, materialize

from taxi_platform.assets import ingest_assets, raw_assets
from taxi_platform.sources import TaxiSourceResource
from taxi_platform.steps import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL
from tests.support.publisher import Behaviour, Publisher

REAL = "yellow_tripdata_2019-01.csv.gz"


@pytest.fixture
def publisher(tlc_dir):
    """The real month behind whatever Behaviour a test sets: ``publisher.behaviour``."""
    with Publisher(Behaviour(payload=(tlc_dir / "mirror/yellow" / REAL).read_bytes(), retry_after=None)) as pub:
        yield pub


def run_raw(url: str, tmp_path):
    raw_yellow = next(a for a in raw_assets if a.key.path == ["raw", "yellow_tripdata"])
    # Two tries, 10 ms apart: the download gives up fast.
    source = TaxiSourceResource(base_url=url, download_dir=str(tmp_path / "raw"), max_attempts=2,
                                backoff_seconds=0.01)
    return materialize([raw_yellow], partition_key="2019-01", resources={"source": source},
                       instance=DagsterInstance.ephemeral(), raise_on_error=False)


def events(result, kind: DagsterEventType):
    return [e for e in result.all_events if e.event_type == kind]


def test_a_flaky_server_is_retried_by_the_download_alone_until_the_file_arrives(publisher, tmp_path):
    publisher.behaviour.unavailable_first = 1  # 503, then 200: the download's second try
    result = run_raw(publisher.url, tmp_path)
    assert result.success
    assert len(publisher.behaviour.requests) == 2
    assert events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert (tmp_path / "raw" / "yellow" / REAL).stat().st_size == len(publisher.behaviour.payload)


def test_a_download_that_gives_up_fails_the_step_once_not_retried_again_around_it(publisher, tmp_path):
    publisher.behaviour.unavailable_first = 3  # two tries, both 503: the download gives up
    result = run_raw(publisher.url, tmp_path)
    assert not result.success
    assert len(publisher.behaviour.requests) == 2  # not 2 x the step's 4 attempts
    assert events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    (failure,) = events(result, DagsterEventType.STEP_FAILURE)
    assert "giving up after 2 attempts: HTTP 503" in failure.event_specific_data.error.message


def test_a_404_fails_the_step_once_at_once_without_any_retry(publisher, tmp_path):
    publisher.behaviour.not_found = True
    url = publisher.url
    result = run_raw(url, tmp_path)
    assert not result.success
    assert len(publisher.behaviour.requests) == 1
    assert events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    (failure,) = events(result, DagsterEventType.STEP_FAILURE)
    assert f"{REAL} is not published at {url}/yellow/{REAL}" in failure.event_specific_data.error.message


def test_every_ingest_asset_retries_transient_errors_with_exponential_backoff_and_jitter():
    assert TRANSIENT_RETRY_POLICY.backoff == Backoff.EXPONENTIAL
    assert TRANSIENT_RETRY_POLICY.jitter == Jitter.PLUS_MINUS and TRANSIENT_RETRY_POLICY.max_retries >= 1
    for assets_def in ingest_assets:
        assert assets_def.node_def.retry_policy == TRANSIENT_RETRY_POLICY, assets_def.key


# What the broken source raises, in turn, before it downloads for real; and its calls.
_PLAN: dict[str, list] = {"errors": [], "calls": []}


class _BrokenSource(TaxiSourceResource):
    """A source whose download raises the planned errors in turn, then downloads for real."""

    def download(self, colour, filename, month):
        _PLAN["calls"].append(filename)
        if len(_PLAN["calls"]) <= len(_PLAN["errors"]):
            raise _PLAN["errors"][len(_PLAN["calls"]) - 1]
        return super().download(colour, filename, month)


def run_with(errors: list[Exception], url, tmp_path):
    _PLAN.update(errors=errors, calls=[])
    raw_yellow = next(a for a in raw_assets if a.key.path == ["raw", "yellow_tripdata"])
    source = _BrokenSource(base_url=url, download_dir=str(tmp_path / "raw"))
    return materialize([raw_yellow], partition_key="2019-01", resources={"source": source},
                       instance=DagsterInstance.ephemeral(), raise_on_error=False)


def test_a_code_error_fails_the_step_at_once_with_its_type_and_message_and_no_retry(publisher, tmp_path):
    result = run_with([KeyError("vendorid")], publisher.url, tmp_path)
    assert not result.success
    assert len(_PLAN["calls"]) == 1
    assert events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    (failure,) = events(result, DagsterEventType.STEP_FAILURE)
    assert "KeyError: 'vendorid'" in failure.event_specific_data.error.message


def test_a_lost_connection_is_retried_by_the_step_policy_and_the_month_then_loads(publisher, tmp_path):
    result = run_with([ConnectionResetError("peer reset")], publisher.url, tmp_path)
    assert result.success
    assert len(_PLAN["calls"]) == 2
    assert len(events(result, DagsterEventType.STEP_UP_FOR_RETRY)) == 1


def test_the_dbt_steps_and_gx_checks_retry_as_the_ingest_assets_do_and_take_the_warehouse_pool():
    from taxi_platform.assets.dbt import build_dbt_assets
    from taxi_platform.checks import build_checks

    for definition in [*build_dbt_assets(), *build_checks()]:
        assert definition.node_def.retry_policy == TRANSIENT_RETRY_POLICY, definition.node_def.name
        assert definition.node_def.pool == WAREHOUSE_POOL, definition.node_def.name
