"""The publication sensor against a local HTTP server: a month that 404s is waited for quietly,
with one cheap probe per colour and tick; once it answers 200 the run is requested, once."""

from __future__ import annotations

import functools
import http.server
import threading
from collections import Counter

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance, Definitions, build_sensor_context

from taxi_platform.assets import ingest_assets
from taxi_platform.jobs import build_colour_jobs
from taxi_platform.resources import resources_from_env
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import YELLOW
from taxi_platform.sensors import build_sensors
from taxi_platform.sources import TaxiSourceResource


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    seen: Counter

    def do_HEAD(self):
        self.seen[(self.command, self.path)] += 1
        super().do_HEAD()

    def do_GET(self):
        self.seen[(self.command, self.path)] += 1
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "published"
    root.mkdir()
    seen: Counter = Counter()
    handler = functools.partial(type("Handler", (_CountingHandler,), {"seen": seen}), directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def test_a_month_that_404s_is_waited_for_quietly_and_requested_once_it_appears(
        platform_env, server, tmp_path):
    root, url, seen = server
    jobs = build_colour_jobs(ingest_assets)
    defs = Definitions(assets=ingest_assets, jobs=list(jobs.values()), sensors=build_sensors(jobs),
                       resources=resources_from_env())
    sensor = defs.resolve_sensor_def("publication_sensor")
    source = TaxiSourceResource(base_url=url, download_dir=str(tmp_path / "raw"))
    with DagsterInstance.get() as instance:
        # yellow is loaded up to 2019-01; green has never been loaded.
        instance.report_runless_asset_event(
            AssetMaterialization(AssetKey(["raw", "yellow_tripdata"]), partition="2019-01"))
        cursor = None

        def tick():
            nonlocal cursor
            result = sensor.evaluate_tick(build_sensor_context(
                instance=instance, cursor=cursor, definitions=defs, resources={"source": source}))
            cursor = result.cursor
            return result

        first = tick()
        assert first.run_requests == [] and "yellow 2019-02" in first.skip_message
        # One HEAD per colour: yellow's next month, and green's latest complete month.
        assert sum(seen.values()) == 2 and all(method == "HEAD" for method, _ in seen)
        assert seen[("HEAD", "/yellow/yellow_tripdata_2019-02.csv.gz")] == 1

        write_month(YELLOW, "2019-02", 50, root)  # now published
        second = tick()
        (request,) = second.run_requests
        assert (request.job_name, request.partition_key) == ("yellow_tripdata_job", "2019-02")
        assert request.tags["taxi/trigger"] == "publication"
        # It went on to probe 2019-03 (a 404), and downloaded nothing itself.
        assert seen[("HEAD", "/yellow/yellow_tripdata_2019-03.csv.gz")] == 1
        assert not any(method == "GET" for method, _ in seen)

        third = tick()
        assert third.run_requests == [], "a requested month is not requested again"
        assert "yellow 2019-03" in third.skip_message
        assert seen[("HEAD", "/yellow/yellow_tripdata_2019-02.csv.gz")] == 2


def test_an_unreachable_source_is_a_warning_and_no_request(platform_env, tmp_path, capfd):
    jobs = build_colour_jobs(ingest_assets)
    defs = Definitions(assets=ingest_assets, jobs=list(jobs.values()), sensors=build_sensors(jobs),
                       resources=resources_from_env())
    sensor = defs.resolve_sensor_def("publication_sensor")
    source = TaxiSourceResource(base_url="http://127.0.0.1:9", download_dir=str(tmp_path), timeout_seconds=5)
    with DagsterInstance.get() as instance:
        result = sensor.evaluate_tick(build_sensor_context(
            instance=instance, definitions=defs, resources={"source": source}))
    assert result.run_requests == [] and "probe failed" in result.skip_message
    assert "publication: could not probe" in capfd.readouterr().err
