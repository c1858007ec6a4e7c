"""The dbt project in ``dbt_project/`` as Dagster sees it: where it lives, its manifest, and
how a dbt invocation finds the same warehouse as the assets.

The manifest (``dbt_project/target/manifest.json``) is what ``@dbt_assets`` reads to build the
asset graph. It is prepared (``dbt parse``) when the code location loads and

- it does not exist yet (a fresh clone, CI), or
- a file of the dbt project is newer than it (a model edited while ``dagster dev`` runs:
  reload the code location and the change shows; this replaces ``DbtProject.prepare_if_dev``,
  which re-parses in every process under ``dagster dev``, run workers included),

and by ``make dbt-manifest`` (``python -m taxi_platform.dbt_project``) when building a
deployment, so a deployed code location loads without running dbt. A project that does not
parse raises :class:`DbtProjectError` with dbt's own message (file, line, reason) on top.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version
from pydantic import PrivateAttr

from taxi_platform.partitions import month_range
from taxi_platform.schemas import SCHEMAS

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
_SOURCE_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py"}
_NOT_SOURCES = {"target", "logs", "dbt_packages"}


class DbtProjectError(Exception):
    """The dbt project does not parse or compile; the message is dbt's."""


def dbt_executable() -> str:
    """The ``dbt`` beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.is_file() else (shutil.which("dbt") or "dbt")


taxi_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class TaxiDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource (the ``dbt`` resource of the Definitions) for this project,
    without dbt's start-up in every invocation:

    - it knows the installed dbt-core's version from the package metadata (the stock resource
      asks ``dbt --version``: two seconds, in every run that invokes dbt);
    - dbt runs as a fork of the run's dbt fork server (taxi_platform/dbt_server.py), which has
      dbt imported already, when the server is up;
    - ``cli(..., with_adapter=False)`` skips dagster-dbt's own handle on dbt's adapter (half a
      second of macro parsing), for an invocation whose tables are not read through it."""

    _with_adapter: bool = PrivateAttr(default=True)

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return super()._initialize_dbt_core_adapter(args) if self._with_adapter else None

    def cli(self, args, *, with_adapter: bool = True, **kwargs):
        from taxi_platform import dbt_server

        client = dbt_server.client_executable()
        resource = self.model_copy(update={"dbt_executable": client} if client else {})
        resource._with_adapter = with_adapter
        return DbtCliResource.cli(resource, args, **kwargs)


def dbt_resource() -> TaxiDbtCliResource:
    """The ``dbt`` resource: this project, the venv's dbt."""
    return TaxiDbtCliResource(project_dir=taxi_dbt_project, dbt_executable=dbt_executable())


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = [d for d in dirs if d not in _NOT_SOURCES and not d.startswith(".")]
        for name in files:
            if Path(name).suffix in _SOURCE_SUFFIXES:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
    return newest


def manifest_is_stale(project: DbtProject = taxi_dbt_project) -> bool:
    """True when the manifest is missing or older than a file of the dbt project."""
    manifest = project.manifest_path
    if not manifest.is_file():
        return True
    return _newest_source_mtime(project.project_dir) > manifest.stat().st_mtime


def _dbt_failure_text(output: str) -> str:
    """The lines of dbt's text output that say what is wrong (without the run banner)."""
    keep = [line for line in output.splitlines()
            if line.strip() and "Running with dbt=" not in line and "Registered adapter" not in line]
    return "\n".join(keep[-40:]) or "(dbt printed nothing)"


def parse_project(project_dir: Path, target_path: Path, extra_env: dict[str, str] | None = None) -> None:
    """Run ``dbt parse`` writing its artifacts to ``target_path``; DbtProjectError on failure."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": str(target_path),
           **(extra_env or {})}
    env.pop("DBT_TARGET_PATH", None)
    env.pop("DBT_LOG_FORMAT", None)
    result = subprocess.run(
        [dbt_executable(), "parse", "--no-use-colors", "--project-dir", str(project_dir),
         "--profiles-dir", str(project_dir), "--target-path", str(target_path)],
        check=False, cwd=project_dir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise DbtProjectError(
            f"the dbt project in {project_dir} does not parse, so its assets cannot load. "
            f"dbt says:\n{_dbt_failure_text(result.stdout + result.stderr)}")


def prepare_manifest(project: DbtProject = taxi_dbt_project, force: bool = False) -> Path:
    """Make sure ``project.manifest_path`` is loadable and current; returns it.

    Parses only when needed (see the module docstring) or when ``force``. The parse writes to a
    private folder and the manifest is moved into place, so a process reading it never sees a
    half-written file; a lock keeps concurrent loads from parsing twice."""
    from filelock import FileLock

    manifest = project.manifest_path
    if not (force or manifest_is_stale(project)):
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with FileLock(str(manifest.parent / ".prepare-manifest.lock"), timeout=600):
        fresh = manifest.is_file() and manifest.stat().st_mtime >= started
        if fresh or not (force or manifest_is_stale(project)):
            return manifest  # another process prepared it while we waited
        scratch = Path(tempfile.mkdtemp(prefix="prepare-", dir=manifest.parent))
        try:
            parse_project(project.project_dir, scratch)
            partial = scratch / "partial_parse.msgpack"
            if partial.is_file():
                os.replace(partial, manifest.parent / partial.name)
            os.replace(scratch / "manifest.json", manifest)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return manifest


# dbt keeps what it parsed in <target>/partial_parse.msgpack and parses only changed files next
# time, but only under the same profile: a msgpack written for another warehouse, DuckDB file
# or server makes it parse the whole project again (~1.5 s of every invocation). Each invocation
# runs in its own target folder, so the msgpack is kept per profile between them.
PARTIAL_PARSE = "partial_parse.msgpack"
PARTIAL_PARSE_KEEP = 64  # profiles' states kept in target/partial_parse/
WINDOW_VARIABLES = ("TAXI_DBT_MIN_DATE", "TAXI_DBT_MAX_DATE")  # min, max: dbt_project/macros/partitions.sql reads them
_PROFILE_VARIABLES = re.compile(r"env_var\(\s*['\"]([A-Za-z0-9_]+)['\"]")


def partial_parse_cache(env: Mapping[str, str], project: DbtProject = taxi_dbt_project) -> Path:
    """Where the partial-parse state of invocations with this environment's profile is kept:
    ``target/partial_parse/<digest>.msgpack``, the digest over the values of the variables
    ``profiles.yml`` reads (one-way: no credential is written in the name) and whether a
    partition window is set."""
    names = sorted(set(_PROFILE_VARIABLES.findall((project.profiles_dir / "profiles.yml").read_text())))
    # A partition window's variables (their presence, not their values) also part it: the state
    # a month of fct_trips left would make the next unpartitioned invocation parse its files again.
    window = [n for n in WINDOW_VARIABLES if env.get(n)]
    digest = hashlib.sha256("\0".join([*(f"{n}={env.get(n, '')}" for n in names), *window]).encode()).hexdigest()[:20]
    return project.project_dir / project.target_path / "partial_parse" / f"{digest}.msgpack"


def restore_partial_parse(target_path: Path, env: Mapping[str, str] | None = None) -> None:
    """Put the kept partial-parse state for ``env``'s profile (the environment dbt inherits, when
    not given) into an invocation's target folder."""
    cached = partial_parse_cache(os.environ if env is None else env)
    if cached.is_file():
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target_path / PARTIAL_PARSE)


def keep_partial_parse(target_path: Path, env: Mapping[str, str] | None = None) -> None:
    """Keep what an invocation parsed for the next one with the same profile (atomically: another
    process may be reading it)."""
    written = target_path / PARTIAL_PARSE
    if not written.is_file():
        return
    cached = partial_parse_cache(os.environ if env is None else env)
    cached.parent.mkdir(parents=True, exist_ok=True)
    scratch = cached.with_name(f".{cached.name}.{os.getpid()}")
    shutil.copyfile(written, scratch)
    os.replace(scratch, cached)
    # One state per profile ever used (each test or benchmark DuckDB file is a profile): the
    # newest are kept, about 0.7 MB each.
    with contextlib.suppress(OSError):
        kept = sorted(cached.parent.glob("*.msgpack"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-PARTIAL_PARSE_KEEP]:
            old.unlink(missing_ok=True)


def partial_parse_states(dbt_env: Mapping[str, str], project: DbtProject = taxi_dbt_project) -> tuple[dict, list[Path]]:
    """The environment a run's dbt invocations get (``dbt_env``: the warehouse's variables over
    this process's), and the files their partial-parse states are kept in: the unpartitioned
    invocations' and the partitioned ones' (which also set the window's variables)."""
    env = {**os.environ, **dbt_env}
    window = dict.fromkeys(WINDOW_VARIABLES, "set")
    return env, [partial_parse_cache(env, project), partial_parse_cache({**env, **window}, project)]


def partition_filenames(first_month: str, last_month: str) -> list[str]:
    """The published files of the months ``first..last`` (both colours, either source): what a
    partition of fct_trips rebuilds. The dbt macro ``partition_filenames`` computes the same list."""
    return [name for month in month_range(first_month, last_month)
            for schema in SCHEMAS.values() for name in schema.month_files(month)]


@contextlib.contextmanager
def dbt_environment(variables: dict[str, str]) -> Iterator[None]:
    """Set ``variables`` in os.environ while the block runs (a dbt invocation inherits them)."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main() -> int:
    """``make dbt-manifest``: prepare the manifest for a deployment (always parses)."""
    try:
        path = prepare_manifest(force=True)
    except DbtProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"dbt manifest written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
