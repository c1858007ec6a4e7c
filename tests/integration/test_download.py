"""The source download against real local servers: the HTTP mirror of real files, file:// and
plain paths, a 404, a flaky server, a connection cut mid-transfer."""

from __future__ import annotations

import gzip
import hashlib
import time

import pytest

from taxi_platform.errors import BadInputError, NotPublishedError
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import YELLOW
from taxi_platform.sources.http import DownloadGaveUp
from taxi_platform.sources.source import TaxiSourceResource, TransientSourceError
from tests.support.publisher import Behaviour, Publisher

REAL = "yellow_tripdata_2019-01.csv.gz"


def test_a_real_file_downloads_with_its_exact_bytes_and_sha256(mirror, tmp_path):
    source = TaxiSourceResource(base_url=mirror.url, download_dir=str(tmp_path / "raw"))
    got = source.download("yellow", REAL, "2019-01")
    original = (mirror.root / "yellow" / REAL).read_bytes()
    assert got.path.read_bytes() == original
    assert got.size == len(original) == 214_414
    assert got.sha256 == hashlib.sha256(original).hexdigest()
    assert got.url == f"{mirror.url}/yellow/{REAL}"
    assert [p.name for p in got.path.parent.iterdir()] == [REAL], "no temporary file left behind"


def test_a_generated_month_downloads_over_http(mirror, tmp_path):
    made = write_month(YELLOW, "2019-02", 5_000, tmp_path / "gen")
    mirror.add(made, "yellow")
    source = TaxiSourceResource(base_url=mirror.url, download_dir=str(tmp_path / "raw"))
    got = source.download("yellow", made.name, "2019-02")
    assert gzip.decompress(got.path.read_bytes()) == gzip.decompress(made.read_bytes())


@pytest.mark.parametrize("as_url", [True, False])
def test_file_urls_and_plain_paths_work_as_sources(tlc_dir, tmp_path, as_url):
    base = (tlc_dir / "mirror").as_uri() if as_url else str(tlc_dir / "mirror")
    source = TaxiSourceResource(base_url=base, download_dir=str(tmp_path / "raw"))
    got = source.download("yellow", REAL, "2019-01")
    assert got.size == 214_414


def test_a_missing_month_fails_at_once_naming_file_and_url(mirror, tmp_path):
    source = TaxiSourceResource(base_url=mirror.url, download_dir=str(tmp_path / "raw"),
                                backoff_seconds=30)  # a retry would make this test hang
    with pytest.raises(NotPublishedError) as err:
        source.download("yellow", "yellow_tripdata_2031-01.csv.gz", "2031-01")
    assert str(err.value) == (f"yellow_tripdata_2031-01.csv.gz is not published at "
                              f"{mirror.url}/yellow/yellow_tripdata_2031-01.csv.gz")
    assert not (tmp_path / "raw" / "yellow" / "yellow_tripdata_2031-01.csv.gz").exists()


@pytest.fixture
def payload(tlc_dir) -> bytes:
    return (tlc_dir / "mirror/yellow" / REAL).read_bytes()


def test_5xx_answers_are_retried_with_backoff_until_the_file_arrives(payload, tmp_path):
    with Publisher(Behaviour(payload=payload, unavailable_first=2, retry_after=None)) as pub:
        source = TaxiSourceResource(base_url=pub.url, download_dir=str(tmp_path), backoff_seconds=0.01)
        got = source.download("yellow", REAL, "2019-01")
    assert got.attempts == 3 and len(pub.behaviour.requests) == 3
    assert got.size == 214_414


def test_a_transfer_cut_short_is_retried_and_never_lands_half_a_file(payload, tmp_path):
    with Publisher(Behaviour(payload=payload, cut_first_at=1 / 3, ranges=False)) as pub:
        source = TaxiSourceResource(base_url=pub.url, download_dir=str(tmp_path), backoff_seconds=0.01)
        got = source.download("yellow", REAL, "2019-01")
    assert got.attempts == 2 and got.size == 214_414 and got.path.read_bytes() == payload


def test_a_server_that_keeps_failing_gives_up_after_the_last_attempt(payload, tmp_path):
    with Publisher(Behaviour(payload=payload, unavailable_first=100, retry_after=None)) as pub:
        source = TaxiSourceResource(base_url=pub.url, download_dir=str(tmp_path), backoff_seconds=0.01,
                                    max_attempts=3)
        with pytest.raises(TransientSourceError, match="giving up after 3 attempts"):
            source.download("yellow", REAL, "2019-01")
    assert len(pub.behaviour.requests) == 3
    assert list(tmp_path.rglob("*.gz")) == []


def test_a_cut_transfer_resumes_with_a_range_request_after_honouring_retry_after(tlc_dir, tmp_path):
    payload = (tlc_dir / "mirror/yellow" / REAL).read_bytes()
    with Publisher(Behaviour(payload=payload, throttle_first=1, retry_after="1", cut_first_at=0.5)) as pub:
        source = TaxiSourceResource(base_url=pub.url, download_dir=str(tmp_path), backoff_seconds=0.01)
        started = time.monotonic()
        got = source.download("yellow", REAL, "2019-01")
        waited = time.monotonic() - started
    assert got.sha256 == hashlib.sha256(payload).hexdigest() and got.path.read_bytes() == payload
    statuses = [r[2].get("Range") for r in pub.behaviour.requests]
    assert statuses == [None, None, f"bytes={len(payload) // 2}-"]  # 429, the cut answer, the rest
    assert pub.behaviour.requests[2][2]["If-Range"] == '"taxi-test"'
    assert pub.behaviour.bytes_sent < 1.6 * len(payload)
    assert waited >= 1.0  # Retry-After: 1 was honoured


def test_a_server_that_ignores_ranges_sends_the_file_again_and_the_checksum_still_holds(tlc_dir, tmp_path):
    payload = (tlc_dir / "mirror/yellow" / REAL).read_bytes()
    with Publisher(Behaviour(payload=payload, cut_first_at=0.5, ranges=False)) as pub:
        source = TaxiSourceResource(base_url=pub.url, download_dir=str(tmp_path), backoff_seconds=0.01)
        got = source.download("yellow", REAL, "2019-01")
    assert got.sha256 == hashlib.sha256(payload).hexdigest() and got.attempts == 2


def test_a_trickling_server_cannot_hold_a_download_past_its_deadline(tmp_path):
    with Publisher(Behaviour(payload=b"x" * 1000, trickle_seconds=0.2)) as pub:
        source = TaxiSourceResource(base_url=pub.url, download_dir=str(tmp_path), deadline_seconds=2,
                                    timeout_seconds=5, backoff_seconds=0.01)
        started = time.monotonic()
        with pytest.raises(DownloadGaveUp, match="not finished within 2s"):
            source.download("yellow", REAL, "2019-01")
    assert time.monotonic() - started < 10
    assert list(tmp_path.rglob("*")) == [tmp_path / "yellow"]  # nothing half-written left


def test_an_html_page_served_with_200_is_refused_as_not_a_data_file_naming_the_url(tmp_path):
    page = b"<!DOCTYPE html>\n<html><body>Rate limited, try later</body></html>\n"
    with Publisher(Behaviour(payload=page, content_type="text/html")) as pub:
        source = TaxiSourceResource(base_url=pub.url, download_dir=str(tmp_path))
        with pytest.raises(BadInputError, match="is not a data file: it starts with '<!DOCTYPE html>'") as err:
            source.download("yellow", REAL, "2019-01")
    assert f"{pub.url}/yellow/{REAL}" in str(err.value)
    assert not (tmp_path / "yellow" / REAL).exists()


def test_an_uncompressed_csv_is_kept_gzipped_under_its_published_name(tlc_dir, tmp_path):
    plain = gzip.decompress((tlc_dir / "mirror/yellow" / REAL).read_bytes())
    with Publisher(Behaviour(payload=plain)) as pub:
        source = TaxiSourceResource(base_url=pub.url, download_dir=str(tmp_path))
        got = source.download("yellow", REAL, "2019-01")
    assert gzip.decompress(got.path.read_bytes()) == plain
    assert got.sha256 == hashlib.sha256(got.path.read_bytes()).hexdigest()


def test_run_config_for_one_source_setting_keeps_the_others_from_the_environment(platform_env, tmp_path):
    from dagster import DagsterInstance, materialize

    from taxi_platform.assets import raw_assets
    from taxi_platform.resources import resources_from_env

    with DagsterInstance.ephemeral() as instance:
        result = materialize([a for a in raw_assets if "yellow" in a.key.to_user_string()],
                             partition_key="2019-01", instance=instance, resources=resources_from_env(),
                             run_config={"resources": {"source": {"config": {"timeout_seconds": 3}}}})
    (event,) = result.asset_materializations_for_node("raw__yellow_tripdata")
    assert event.metadata["url"].value == f"{platform_env.source_url}/yellow/{REAL}"
