"""Every package the code imports is pinned in requirements.lock, so a fresh clone's `make install`
gets it: a module installed by hand on one machine (as sqlalchemy-bigquery once was) fails here,
not in CI's BigQuery tests."""

import ast
import re
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


def _pinned() -> set[str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return {_normalised(line.split("==")[0]) for line in lines if "==" in line and not line.startswith("#")}


def test_every_third_party_module_the_platform_imports_is_pinned_in_the_lock_file():
    third_party = _imported_top_level_modules(ROOT / "taxi_platform") - set(sys.stdlib_module_names) - {
        "taxi_platform", "__future__"}
    providers = packages_distributions()
    pinned = _pinned()
    unpinned = {module: providers.get(module, ["(not installed)"]) for module in sorted(third_party)
                if not any(_normalised(dist) in pinned for dist in providers.get(module, []))}
    assert not unpinned, f"imported but not in requirements.lock: {unpinned}"


def test_every_dependency_in_pyproject_is_pinned_in_the_lock_file():
    text = (ROOT / "pyproject.toml").read_text()
    declared = re.findall(r'^\s*"([A-Za-z0-9_.\-]+)', text.split("dependencies = [")[1].split("]")[0], re.MULTILINE)
    missing = [name for name in declared if _normalised(name) not in _pinned()]
    assert not missing, f"in pyproject.toml but not in requirements.lock: {missing}"
