"""The source download against real local servers: the HTTP mirror of real files, file:// and
plain paths, a 404, a flaky server, a connection cut mid-transfer."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading

import pytest

from taxi_platform.errors import NotPublishedError
from taxi_platform.resources.source import TaxiSourceResource, TransientSourceError
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import YELLOW

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
    assert gzip.open(got.path).read() == gzip.open(made).read()


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


class _Flaky(http.server.BaseHTTPRequestHandler):
    """503 for the first `failures` requests, then the payload; optionally cut short."""

    payload = b""
    failures = 0
    cut_first = False
    requests = 0

    def do_GET(self):
        cls = type(self)
        cls.requests += 1
        if cls.requests <= cls.failures:
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(cls.payload)))
        self.end_headers()
        if cls.cut_first and cls.requests == cls.failures + 1:
            self.wfile.write(cls.payload[: len(cls.payload) // 3])  # then hang up
            self.close_connection = True
            return
        self.wfile.write(cls.payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky(tlc_dir):
    handler = type("Handler", (_Flaky,), {"payload": (tlc_dir / "mirror/yellow" / REAL).read_bytes(),
                                          "requests": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_5xx_answers_are_retried_with_backoff_until_the_file_arrives(flaky, tmp_path):
    handler, url = flaky
    handler.failures = 2
    source = TaxiSourceResource(base_url=url, download_dir=str(tmp_path), backoff_seconds=0.01)
    got = source.download("yellow", REAL, "2019-01")
    assert got.attempts == 3 and handler.requests == 3
    assert got.size == 214_414


def test_a_transfer_cut_short_is_retried_and_never_lands_half_a_file(flaky, tmp_path):
    handler, url = flaky
    handler.cut_first = True
    source = TaxiSourceResource(base_url=url, download_dir=str(tmp_path), backoff_seconds=0.01)
    got = source.download("yellow", REAL, "2019-01")
    assert got.attempts == 2 and got.size == 214_414


def test_a_server_that_keeps_failing_gives_up_after_the_last_attempt(flaky, tmp_path):
    handler, url = flaky
    handler.failures = 100
    source = TaxiSourceResource(base_url=url, download_dir=str(tmp_path), backoff_seconds=0.01,
                                max_attempts=3)
    with pytest.raises(TransientSourceError, match="giving up after 3 attempts"):
        source.download("yellow", REAL, "2019-01")
    assert handler.requests == 3
    assert list(tmp_path.rglob("*.gz")) == []
