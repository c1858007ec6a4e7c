"""A dbt fork server: dbt imported once per run process, each invocation a fork of it.

A dbt invocation spends about two seconds before it touches the warehouse: importing dbt and
its adapter (1.3 s) and compiling its (de)serialisers on first use (0.5 s). A run that builds
the seeds, fct_trips and the marts pays that three times, more than the whole month's dbt work
on the demo's months. So the first dbt step of a run (or the run's first step, when the run
selects dbt assets: :func:`start`) starts this server beside the run's process. It imports dbt
and the warehouse's adapter, warms those serialisers on the project's partial-parse state, and
listens on a Unix socket. dagster-dbt then runs ``taxi_platform/dbt_fork_client.py`` (written
as an executable script beside the socket) instead of ``dbt``. The client hands its arguments,
working directory, environment and standard streams to the server, which forks. The fork is a
fresh process as far as dbt is concerned: it parses (partially), opens its own connections,
writes into dagster-dbt's pipe and exits with dbt's exit code. The server itself never opens a
warehouse and never runs dbt.

Nothing depends on it: when it cannot start, or ``TAXI_DBT_FORK_SERVER=0``, dagster-dbt runs
the real ``dbt`` executable as before; a client that cannot reach the server becomes it. The
server ends with the process that started it.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

READY_TIMEOUT_SECONDS = 60.0
ENABLED_VARIABLE = "TAXI_DBT_FORK_SERVER"

# Classes whose JSON schema dbt builds (and validates against) in every invocation.
_SCHEMA_CLASSES = [
    ("dbt.contracts.project", "Project"), ("dbt.contracts.project", "ProjectFlags"),
    ("dbt.contracts.project", "ProfileConfig"), ("dbt.contracts.project", "PackageConfig"),
    ("dbt.contracts.project", "Configuration"), ("dbt.contracts.selection", "SelectorFile"),
    ("dbt.task.test", "TestResultData"),
]
_CREDENTIALS = {"duckdb": ("dbt.adapters.duckdb.credentials", "DuckDBCredentials"),
                "postgres": ("dbt.adapters.postgres.connections", "PostgresCredentials"),
                "bigquery": ("dbt.adapters.bigquery.credentials", "BigQueryCredentials")}
_RELATIONS = {"duckdb": ("dbt.adapters.duckdb.relation", "DuckDBRelation"),
              "postgres": ("dbt.adapters.postgres.relation", "PostgresRelation"),
              "bigquery": ("dbt.adapters.bigquery.relation", "BigQueryRelation")}
# Classes whose (de)serialisers mashumaro compiles on first use in every invocation (about 60 ms
# a fork): reading the project, the profile and relations; writing results and run_results.json.
_READ_CLASSES = [
    ("dbt.contracts.project", "ProjectFlags"), ("dbt.contracts.project", "Project"),
    ("dbt.contracts.project", "PackageConfig"), ("dbt.contracts.selection", "SelectorFile"),
    ("dbt.adapters.contracts.relation", "Path"), ("dbt.adapters.contracts.relation", "Policy"),
    ("dbt.task.test", "TestResultData"),
]
_WRITTEN_CLASSES = [
    ("dbt.adapters.contracts.connection", "QueryComment"), ("dbt.adapters.contracts.relation", "Policy"),
    ("dbt.contracts.project", "PackageConfig"), ("dbt.adapters.contracts.relation", "Path"),
    ("dbt_common.helper_types", "WarnErrorOptionsV2"), ("dbt.adapters.contracts.connection", "AdapterResponse"),
    ("dbt.artifacts.schemas.results", "TimingInfo"), ("dbt.artifacts.schemas.run.v5.run", "RunResultsArtifact"),
    ("dbt.artifacts.schemas.run.v5.run", "RunResultsMetadata"),
    ("dbt.artifacts.schemas.run.v5.run", "RunResultOutput"),
]
# Set to "0" by a step that reads the run's manifest only once dbt has exited (DuckDB's): the fork
# then writes manifest.json once, at the end of the run, not also after parsing (~0.11 s each).
MANIFEST_AFTER_PARSE_VARIABLE = "TAXI_DBT_MANIFEST_AFTER_PARSE"


def enabled(env: dict[str, str] | None = None) -> bool:
    """TAXI_DBT_FORK_SERVER: on unless ``0``/``false``/``no``; and only where processes fork and
    pass file descriptors (Linux, macOS) and the interpreter's path can be a script's first line."""
    value = (env if env is not None else os.environ).get(ENABLED_VARIABLE, "1")
    return (value.strip().lower() not in ("0", "false", "no", "off") and hasattr(os, "fork")
            and hasattr(socket, "send_fds") and not any(c.isspace() for c in sys.executable))


# -- the run process's side -------------------------------------------------------------------
class _Server:
    """A server this process started: its folder holds its socket, its client script and its log."""

    def __init__(self, folder: Path):
        self.folder, self.owner, self.process = folder, os.getpid(), None
        self.socket, self.client, self.log = folder / "dbt.sock", folder / "dbt", folder / "server.log"

    def ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.connect(str(self.socket))
                return True  # (the server drops a connection that sends no request)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)


_lock = threading.Lock()
_server: _Server | None = None
_failed = False  # it did not come up once in this process: do not try again


def _real_dbt() -> str:
    from taxi_platform.dbt_project import dbt_executable

    return dbt_executable()


def start(project_dir: Path | None = None,
          parse_ahead: tuple[Mapping[str, str], list[Path]] | None = None) -> None:
    """Start the server for this process if it is enabled and not running (returns at once).

    ``parse_ahead``: (the environment of the run's dbt invocations, the files where their
    profile's partial-parse state is kept). When none is kept yet (a new warehouse file or
    server), the server parses the project for that profile before it takes invocations, while
    the month loads, so that the first invocation does not parse the whole project itself."""
    global _server
    if not enabled() or _failed:
        return
    with _lock:
        if _server is not None and _server.owner == os.getpid() and _server.process.poll() is None:
            return
        if project_dir is None:
            from taxi_platform.dbt_project import DBT_PROJECT_DIR as project_dir
        server = _Server(Path(tempfile.mkdtemp(prefix="taxi-dbt-")))
        client_source = Path(__file__).with_name("dbt_fork_client.py").read_text()
        server.client.write_text(
            f"#!{sys.executable} -SE\n"
            + client_source.replace('SOCKET = ""', f"SOCKET = {str(server.socket)!r}", 1)
                           .replace('REAL_DBT = ""', f"REAL_DBT = {_real_dbt()!r}", 1))
        server.client.chmod(0o755)
        # The environment reaches the server as its own (never written to a file: it may hold a
        # password); a fork's is the invocation's, sent with it.
        env, states = None, []
        if parse_ahead is not None and not all(state.is_file() for state in parse_ahead[1]):
            env, states = dict(parse_ahead[0]), [str(state) for state in parse_ahead[1]]
        with open(server.log, "wb") as log:
            server.process = subprocess.Popen(
                [sys.executable, "-m", "taxi_platform.dbt_server", str(server.socket), str(project_dir), *states],
                env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True)
        _server = server
        atexit.register(server.stop)


def client_executable(timeout: float = READY_TIMEOUT_SECONDS) -> str | None:
    """The fork client to give dagster-dbt as its dbt executable, once the server is ready; None
    when the server is disabled or did not come up (dagster-dbt then runs the real dbt)."""
    global _failed
    start()
    server = _server
    if server is None or server.owner != os.getpid():
        return None
    if server.ready(timeout):
        return str(server.client)
    _failed = True
    from dagster import get_dagster_logger

    detail = server.log.read_text(errors="replace")[-2000:] if server.log.is_file() else ""
    get_dagster_logger().warning(
        f"the dbt fork server did not come up within {timeout:.0f}s: dbt runs as its own process "
        f"(about 2 s slower per invocation). Its log:\n{detail}")
    server.stop()
    return None


# -- the server --------------------------------------------------------------------------------
def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        sys.exit(0)


def _warm(project_dir: Path) -> None:
    """Import dbt and the warehouse's adapter; build what dbt builds on first use in every
    invocation. Each part is best effort: a dbt that moved things only loses the head start."""
    import dbt.cli.main

    adapter = (os.environ.get("TAXI_WAREHOUSE") or "duckdb").lower()
    adapter = {"postgresql": "postgres"}.get(adapter, adapter)
    for module, name in [*_SCHEMA_CLASSES, *([_CREDENTIALS[adapter]] if adapter in _CREDENTIALS else [])]:
        with contextlib.suppress(Exception):
            getattr(importlib.import_module(module), name).json_schema()
    adapter_classes = [table[adapter] for table in (_CREDENTIALS, _RELATIONS) if adapter in table]
    for module, name in [*_READ_CLASSES, *adapter_classes]:
        with contextlib.suppress(Exception):
            # mashumaro compiles from_dict on its first call, before it reads a field
            getattr(importlib.import_module(module), name).from_dict({})
    for module, name in [*_WRITTEN_CLASSES, *adapter_classes]:
        with contextlib.suppress(Exception):
            # and to_dict likewise: an empty instance is enough to compile it
            cls = getattr(importlib.import_module(module), name)
            cls.to_dict(object.__new__(cls))
    with contextlib.suppress(Exception):
        # dbt_common's behavior flags name their caller with inspect.stack() in every
        # invocation; its map of source files to modules is built here, once (30 ms).
        import inspect

        inspect.getmodule(inspect.currentframe())
    with contextlib.suppress(Exception):  # the node configs, validated when a file is parsed again
        import dbt.artifacts.resources
        import dbt.contracts.graph.model_config
        from dbt_common.dataclass_schema import dbtClassMixin

        for module in (dbt.artifacts.resources, dbt.contracts.graph.model_config):
            for name in dir(module):
                cls = getattr(module, name)
                if name.endswith("Config") and isinstance(cls, type) and issubclass(cls, dbtClassMixin):
                    cls.json_schema()
    with contextlib.suppress(Exception):
        from argparse import Namespace

        from dbt.contracts.graph.manifest import Manifest
        from dbt.flags import set_from_args

        state = project_dir / "target" / "partial_parse.msgpack"
        if state.is_file():
            manifest = Manifest.from_msgpack(state.read_bytes())  # the partial-parse reader
            set_from_args(Namespace(SEND_ANONYMOUS_USAGE_STATS=False), None)
            manifest.writable_manifest().to_dict(omit_none=False)  # the manifest.json writer
            for node in {type(n): n for n in manifest.nodes.values()}.values():
                type(node).from_dict(node.to_dict())  # how a parsed file becomes a node
            _compile_used_macros(manifest, _macros_record(project_dir, adapter))


# The macros dbt compiles from jinja in an invocation (about 90 of the project's 525 on DuckDB:
# materializations, the adapter's, the tests'), 0.1-0.15 s of every fork. The server compiles
# those the forks recorded (dbt keeps compiled macros in a cache keyed by their text, which the
# forks inherit); each fork records what it still had to compile. Compiling all 525 would cost
# 0.75 s of CPU beside the month's load.
_macros_compiled_in_fork: set[str] = set()
_macros_file: Path | None = None


def _macros_record(project_dir: Path, adapter: str) -> Path:
    return project_dir / "target" / "fork_server" / f"macros-{adapter}.json"


def _recorded_macros(record: Path) -> set[str]:
    with contextlib.suppress(OSError, ValueError):
        return set(json.loads(record.read_text()))
    return set()


def _compile_used_macros(manifest: Any, record: Path) -> None:
    """Compile the recorded macros into dbt's template cache, and have every fork note the ones it
    compiles itself (dbt_common's ``template_cache``, an instance dbt calls by module global)."""
    global _macros_file
    from dbt_common.clients import jinja

    cache, wanted = jinja.template_cache, _recorded_macros(record)
    for macro in manifest.macros.values():
        if macro.unique_id in wanted:
            with contextlib.suppress(Exception):
                cache.get_node_template(macro)
    compile_macro = cache.get_node_template

    def get_node_template(node: Any) -> Any:
        if node.macro_sql not in cache.file_cache:
            _macros_compiled_in_fork.add(node.unique_id)
        return compile_macro(node)

    cache.get_node_template = get_node_template
    _macros_file = record


def _record_macros() -> None:
    """In a fork at its end: add the macros it compiled to the record (written whole, atomically;
    two forks ending together may each lose the other's additions, which the next run records)."""
    if not _macros_compiled_in_fork or _macros_file is None:
        return
    with contextlib.suppress(OSError):
        _macros_file.parent.mkdir(parents=True, exist_ok=True)
        merged = sorted(_recorded_macros(_macros_file) | _macros_compiled_in_fork)
        scratch = _macros_file.with_name(f".{_macros_file.name}.{os.getpid()}")
        scratch.write_text(json.dumps(merged, indent=0))
        os.replace(scratch, _macros_file)


def _parse_ahead(project_dir: Path, states: list[Path]) -> None:
    """``dbt parse`` for the run's profile (this process's environment) in a fork (parsing opens
    no connection), its partial-parse state kept in ``states``, where the run's invocations look
    for it. Best effort: when it fails, the first invocation parses as it would have. (Not at a
    lower CPU priority: on a busy machine a niced parse, like a niced warm-up, starved past the
    run's wait for the server.)"""
    with tempfile.TemporaryDirectory(prefix="parse-ahead-") as target:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(project_dir)
                os.environ.update({"DBT_TARGET_PATH": target, "DBT_LOG_PATH": target, "DBT_LOG_LEVEL_FILE": "none",
                                   "DBT_PROFILES_DIR": str(project_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                                   "DBT_VERSION_CHECK": "false"})
                from dbt.cli.main import cli

                with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
                    cli.main(args=["parse", "--quiet"], prog_name="dbt")
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001  best effort: the invocation parses instead
                code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        written = Path(target) / "partial_parse.msgpack"
        if os.waitstatus_to_exitcode(status) != 0 or not written.is_file():
            return
        # The state a partitioned invocation keeps (its own file) starts from the same parse:
        # dbt parses again only the files that read the window's variables.
        for state in states:
            with contextlib.suppress(OSError):
                if state.exists():
                    continue
                state.parent.mkdir(parents=True, exist_ok=True)
                scratch = state.with_name(f".{state.name}.{os.getpid()}")
                shutil.copyfile(written, scratch)
                os.replace(scratch, state)


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    head, fds, _, _ = socket.recv_fds(conn, 8, 3)
    while len(head) < 8:
        more = conn.recv(8 - len(head))
        if not more:
            raise ConnectionError("client went away")
        head += more
    (length,) = struct.unpack("!Q", head)
    payload = b""
    while len(payload) < length:
        more = conn.recv(min(1 << 20, length - len(payload)))
        if not more:
            raise ConnectionError("client went away")
        payload += more
    return json.loads(payload), fds


def _run_dbt(conn: socket.socket, fds: list[int], request: dict) -> None:
    """In the fork: become the client's dbt process and exit with dbt's exit code."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # dbt's own subprocesses must be waitable
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        if fd > 2:
            os.close(fd)
    sys.stdout.reconfigure(line_buffering=True)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    conn.sendall(f"pid {os.getpid()}\n".encode())
    finished = threading.Event()

    def stop_when_the_client_goes() -> None:
        # The client sends nothing more: recv returns when it closes, which it does only after
        # reading the exit code, unless it was killed. Then dbt is interrupted, as Ctrl-C would.
        with contextlib.suppress(OSError):
            conn.recv(1)
        if not finished.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=stop_when_the_client_goes, daemon=True).start()
    code = 1
    try:
        from dbt.cli.main import cli

        if os.environ.get(MANIFEST_AFTER_PARSE_VARIABLE) == "0":
            import dbt.parser.manifest

            # parse_manifest's own write; the run's end writes it (dbt.task.runnable's binding)
            dbt.parser.manifest.write_manifest = lambda *args, **kwargs: None

        cli.main(args=request["argv"], prog_name="dbt")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001  reported as dbt's own crash would be
        import traceback

        traceback.print_exc()
    finally:
        finished.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(Exception):
            _record_macros()
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()  # what a normal exit runs (multiprocessing's clean-up)
        with contextlib.suppress(Exception):
            conn.sendall(f"exit {code}\n".encode())
        os._exit(code)


def _reap(wait_seconds: float = 0.0) -> None:
    """Collect the forks that ended; with ``wait_seconds``, wait that long for running ones."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:  # some still run
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)


def serve(socket_path: str, project_dir: Path, parse_ahead: list[Path] | None = None) -> None:
    """``parse_ahead``: where to keep the partial-parse state of a ``dbt parse`` for the profile of
    this process's environment (see :func:`start`), done before the first invocation is taken."""
    parent = os.getppid()
    _die_with_parent(parent)
    _warm(project_dir)
    if parse_ahead:
        _parse_ahead(project_dir, parse_ahead)
    # What is imported and warm stays shared with the forks: the garbage collector leaves it
    # alone, instead of touching (and so copying into each fork) every page it scans.
    gc.freeze()
    # Forks are reaped as they end (not left to the kernel with SIG_IGN): a reaped child's CPU time
    # adds to the server's, and so to the run's when the run reaps the server (time, benchmarks).
    signal.signal(signal.SIGCHLD, lambda *_: _reap())
    signal.signal(signal.SIGTERM, lambda *_: (_reap(wait_seconds=2.0), sys.exit(0)))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)  # bound once warm: a client that connects finds it ready
    listener.listen(16)
    listener.settimeout(1.0)
    while os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(10.0)
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError):
            conn.close()
            continue
        conn.settimeout(None)
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            try:
                listener.close()
                _run_dbt(conn, fds, request)
            finally:
                os._exit(1)  # whatever happened, a fork never goes back into the server's loop
        for fd in fds:
            os.close(fd)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]), [Path(state) for state in sys.argv[3:]])
