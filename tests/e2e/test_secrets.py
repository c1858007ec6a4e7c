"""No secret ever reaches a log, an event, metadata or an alert: with a PostgreSQL password planted
in TAXI_PG_DSN and a token in the webhook URL, a good run, a run with a malformed DSN and the
failure alerts (one delivered, one refused) leave no trace of either anywhere: not in DAGSTER_HOME
(event logs, compute logs, run storage), not in the data dir (GX results, Data Docs), not on the
commands' stdout or stderr, not in the alert payloads or the sensor's error."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context

from taxi_platform.sensors import failure_alert_sensor
from tests.support.postgres import NEWEST

BIN = Path(sys.executable).parent
PASSWORD, TOKEN = "SeCrEt-pg-P4ss", "SeCrEt-h00k-T0ken"
SECRETS = (PASSWORD, TOKEN)


class _Webhook(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list] = []

    def do_POST(self):
        type(self).bodies.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _materialize(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "taxi_platform.definitions",
                           "--select", "*silver/yellow_tripdata", "--partition", "2019-01"],
                          env=env, capture_output=True, text=True, timeout=600, check=False)


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.mark.slow
@pytest.mark.parametrize("postgres_server", [NEWEST], indirect=True)  # masking is no matter of version
def test_planted_secrets_appear_in_no_log_event_metadata_file_output_or_alert(
        platform_env, postgres_server, monkeypatch):
    database = postgres_server.create_database()
    good_dsn = f"postgresql://{postgres_server.user}:{PASSWORD}@{postgres_server.host}:{postgres_server.port}/{database}"
    env = {**os.environ, **platform_env.vars(), "TAXI_WAREHOUSE": "postgres", "TAXI_PG_DSN": good_dsn}
    for key in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
        env.pop(key, None)
    good = _materialize(env)
    assert good.returncode == 0, good.stderr[-3000:]
    bad = _materialize({**env, "TAXI_PG_DSN": f"postgresql://u:{PASSWORD}@[::1/db"})
    assert bad.returncode != 0
    assert "could not connect to PostgreSQL with <a malformed connection URL, not shown>" in bad.stdout + bad.stderr

    # the alerts for the failed run: one delivered, one refused
    handler = type("Handler", (_Webhook,), {"bodies": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TAXI_PG_DSN", good_dsn)
    errors = []
    with DagsterInstance.get() as instance:
        (failed,) = [r for r in instance.get_runs() if r.is_failure]
        event = instance.all_logs(failed.run_id, of_type=DagsterEventType.PIPELINE_FAILURE)[-1]
        for url in (f"http://127.0.0.1:{server.server_address[1]}/services/{TOKEN}",
                    f"http://127.0.0.1:9/services/{TOKEN}"):  # nothing listens on port 9
            monkeypatch.setenv("TAXI_ALERT_WEBHOOK_URL", url)
            context = build_run_status_sensor_context(
                sensor_name="failure_alert_sensor", dagster_event=event.dagster_event, dagster_instance=instance,
                dagster_run=failed).for_run_failure()
            try:
                failure_alert_sensor(context)
            except Exception as exc:  # noqa: BLE001  the refused delivery fails the tick: read its error
                errors.append(str(exc))
    server.shutdown()
    assert len(handler.bodies) == 1 and json.loads(handler.bodies[0])["text"]
    assert len(errors) == 1 and "not delivered: webhook http://127.0.0.1/***" in errors[0]

    found = {}
    for folder in (platform_env.dagster_home, platform_env.data_dir):
        for path in Path(folder).rglob("*"):
            if path.is_file() and path.suffix != ".duckdb":
                leaked = _leaks(path.read_bytes().decode("utf-8", "replace"))
                if leaked:
                    found[str(path)] = leaked
    for name, text in [("good stdout", good.stdout + good.stderr), ("bad stdout", bad.stdout + bad.stderr),
                       ("alert payload", handler.bodies[0]), ("sensor error", errors[0])]:
        if _leaks(text):
            found[name] = _leaks(text)
    assert found == {}
