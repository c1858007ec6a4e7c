"""The dbt fork server (taxi_platform/dbt_server.py): a forked dbt behaves as the real ``dbt``
(output, exit code, artifacts, signals), a client that cannot reach the server runs the real
dbt, and the server ends with the process that started it. The dbt assets' own tests
(test_dbt_cli.py, test_backends_marts.py, test_bigquery_dbt.py) run every invocation through it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from taxi_platform import dbt_server
from taxi_platform.dbt_project import DBT_PROJECT_DIR, dbt_executable


def _dbt_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "TAXI_WAREHOUSE": "duckdb", "TAXI_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false",
            "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "target"),
            "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR), **extra}


def _run(executable: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([executable, *args], check=False, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def client() -> str:
    executable = dbt_server.client_executable()
    assert executable, "the dbt fork server did not come up"
    return executable


def test_a_forked_dbt_parses_the_project_writes_its_artifacts_and_exits_as_dbt_does(client, tmp_path):
    started = time.monotonic()
    result = _run(client, ["parse", "--log-format", "json"], _dbt_env(tmp_path))
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events and events[0]["info"]["name"] == "MainReportVersion"  # dbt's own first event
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert "model.taxi_platform.fct_trips" in manifest["nodes"]
    print(f"dbt parse through the fork server: {seconds:.2f}s")


def test_a_failing_dbt_command_gives_the_same_exit_code_and_message_as_the_real_dbt(client, tmp_path):
    args = ["run-operation", "no_such_macro"]
    forked = _run(client, args, _dbt_env(tmp_path / "forked"))
    real = _run(dbt_executable(), args, _dbt_env(tmp_path / "real"))
    assert real.returncode != 0
    assert forked.returncode == real.returncode
    assert "no_such_macro" in forked.stdout + forked.stderr


def test_each_invocation_sees_its_own_environment_and_working_directory(client, tmp_path):
    # The project reads TAXI_DUCKDB_PATH from the environment of the invocation, not the server's.
    for name in ("a", "b"):
        result = _run(client, ["debug", "--no-version-check"], _dbt_env(tmp_path, TAXI_DUCKDB_PATH=str(
            tmp_path / f"{name}.duckdb")))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{name}.duckdb" in result.stdout


def test_a_client_that_cannot_reach_the_server_runs_the_real_dbt(client, tmp_path):
    orphan = tmp_path / "dbt"
    orphan.write_text(Path(client).read_text().replace(
        str(Path(client).with_name("dbt.sock")), str(tmp_path / "nobody-listens.sock")))
    orphan.chmod(0o755)
    result = _run(str(orphan), ["--version"], _dbt_env(tmp_path))
    assert result.returncode == 0
    assert "Core" in result.stdout or "installed" in result.stdout


def test_sigint_to_the_client_interrupts_the_forked_dbt(client, tmp_path):
    # A macro that runs for hours: the client forwards SIGINT to the forked dbt, which stops.
    macros = tmp_path / "project"
    process = subprocess.Popen(
        [client, "run-operation", "sleep_a_while"], cwd=_sleeping_project(macros),
        env=_dbt_env(tmp_path, DBT_PROFILES_DIR=str(DBT_PROJECT_DIR)), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    time.sleep(8)  # parsed and looping
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)  # a dbt that ignored it would loop for hours
    assert process.returncode != 0, output


def test_a_killed_client_takes_its_forked_dbt_with_it(client, tmp_path):
    # dagster-dbt's process may die, or kill the client: the fork must not run on unseen.
    server, process, forks = _sleeping_fork(client, tmp_path)
    time.sleep(8)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 30
    while set(_children(server)) & forks and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(_children(server)) & forks, "the forked dbt outlived its killed client"


def _sleeping_fork(client: str, tmp_path: Path) -> tuple[int, subprocess.Popen, set[int]]:
    """(the server's pid, a client running a macro that loops for hours, the server's fork for it)."""
    server = dbt_server._server.process.pid
    before = set(_children(server))
    process = subprocess.Popen(
        [client, "run-operation", "sleep_a_while"], cwd=_sleeping_project(tmp_path / "project"),
        env=_dbt_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (forks := set(_children(server)) - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not forks:
        process.kill()
        pytest.fail("no fork of the server ran the invocation")
    return server, process, forks


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def _sleeping_project(root: Path) -> Path:
    (root / "macros").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: sleeper\nversion: '1.0'\nprofile: taxi_platform\n")
    (root / "macros" / "sleep.sql").write_text(textwrap.dedent("""\
        {% macro sleep_a_while() %}
          {%- for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor -%}
        {% endmacro %}
        """))
    return root


def test_the_server_ends_with_the_process_that_started_it(tmp_path):
    script = textwrap.dedent("""\
        import sys, time
        from taxi_platform import dbt_server
        print(dbt_server.client_executable(), dbt_server._server.process.pid, flush=True)
        time.sleep(600)
        """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TAXI_WAREHOUSE": "duckdb"})
    client_path, server_pid = parent.stdout.readline().split()
    assert Path(client_path).is_file()
    os.kill(int(server_pid), 0)  # running
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(int(server_pid), 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"the dbt fork server (pid {server_pid}) outlived the process that started it")


def test_with_the_server_switched_off_dbt_runs_as_its_own_process():
    script = "from taxi_platform import dbt_server; print(dbt_server.client_executable())"
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                            env={**os.environ, dbt_server.ENABLED_VARIABLE: "0"}, timeout=60)
    assert result.stdout.strip() == "None", result.stderr


def test_a_fork_told_its_manifest_is_read_after_the_run_writes_it_once_at_the_end(client, tmp_path):
    # DuckDB's steps read the run's manifest only once dbt has exited: the fork skips the copy
    # dbt writes after parsing, and the one written at the end has every compiled node.
    skip = {dbt_server.MANIFEST_AFTER_PARSE_VARIABLE: "0"}
    parsed = _run(client, ["parse"], _dbt_env(tmp_path / "parse", **skip))
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    assert not (tmp_path / "parse" / "target" / "manifest.json").exists()

    compiled = _run(client, ["compile", "--select", "dim_zones"], _dbt_env(tmp_path / "compile", **skip))
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    manifest = json.loads((tmp_path / "compile" / "target" / "manifest.json").read_text())
    assert "from" in manifest["nodes"]["model.taxi_platform.dim_zones"]["compiled_code"].lower()


def test_the_server_compiles_the_macros_forks_used_before_and_forks_record_what_they_compile(client, tmp_path):
    # A fork records the macros it compiled (the client's server records beside the project) ...
    compiled = _run(client, ["compile", "--select", "dim_zones"], _dbt_env(tmp_path / "compile"))
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    record = dbt_server._macros_record(DBT_PROJECT_DIR, "duckdb")
    assert any(name.startswith("macro.dbt.") for name in json.loads(record.read_text()))

    # ... and a server compiles exactly the recorded ones before forking (in its own process here).
    script = textwrap.dedent(f"""\
        import json
        from pathlib import Path
        from dbt.contracts.graph.manifest import Manifest
        from dbt_common.clients.jinja import template_cache
        from taxi_platform import dbt_server
        from taxi_platform.dbt_project import DBT_PROJECT_DIR, prepare_manifest
        prepare_manifest()
        manifest = Manifest.from_msgpack((DBT_PROJECT_DIR / "target" / "partial_parse.msgpack").read_bytes())
        record = Path({str(tmp_path / "macros.json")!r})
        record.write_text(json.dumps(["macro.dbt.is_incremental", "macro.dbt.no_such_macro"]))
        dbt_server._compile_used_macros(manifest, record)
        print(len(template_cache.file_cache))
        template_cache.get_node_template(manifest.macros["macro.dbt.run_query"])  # as a fork would
        dbt_server._record_macros()
        print(json.dumps(json.loads(record.read_text())))
        """)
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                            env={**os.environ, "TAXI_WAREHOUSE": "duckdb"}, timeout=300)
    assert result.returncode == 0, result.stderr
    cached, recorded = result.stdout.splitlines()[-2:]
    assert cached == "1"
    assert json.loads(recorded) == ["macro.dbt.is_incremental", "macro.dbt.no_such_macro", "macro.dbt.run_query"]


def test_a_server_started_for_a_new_profile_parses_it_ahead_for_the_runs_first_invocation(tmp_path):
    # A new DuckDB file is a new dbt profile: no partial-parse state is kept for it yet, and the
    # first invocation would parse the whole project. The server parses it before its first fork.
    script = textwrap.dedent(f"""\
        import json, shutil, subprocess
        from pathlib import Path
        from taxi_platform import dbt_server
        from taxi_platform.dbt_project import DBT_PROJECT_DIR, partial_parse_states
        env, states = partial_parse_states({{"TAXI_DUCKDB_PATH": {str(tmp_path / "new.duckdb")!r}}})
        assert not any(state.exists() for state in states)
        dbt_server.start(parse_ahead=(env, states))
        client = dbt_server.client_executable()
        print(json.dumps([state.is_file() for state in states]))
        target = Path({str(tmp_path / "target")!r})
        target.mkdir()
        shutil.copyfile(states[0], target / "partial_parse.msgpack")  # as run_dbt restores it
        result = subprocess.run([client, "parse", "--log-format", "json"], cwd=DBT_PROJECT_DIR,
                                env={{**env, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(target),
                                     "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}},
                                capture_output=True, text=True, check=True)
        print("full parse" if "Unable to do partial parsing" in result.stdout else "partial parse")
        for state in states:
            state.unlink()
        """)
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                            env={**os.environ, "TAXI_WAREHOUSE": "duckdb"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    kept, parse = result.stdout.splitlines()[-2:]
    assert json.loads(kept) == [True, True]
    assert parse == "partial parse"
