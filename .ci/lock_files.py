"""Write the three lock files from one resolution (`make lock`).

Given the freeze of a venv holding ``.[gcp,test]`` (one set of versions that install together),
asks pip which of those packages each install needs — the default (``.``), with the Google
Cloud stack (``.[gcp]``), and everything (``.[gcp,test]``) — and writes requirements.lock,
requirements-gcp.lock and requirements-test.lock with exactly those pins. So the three files
never disagree on a version, and `make demo` installs no package it does not use.

    python .ci/lock_files.py /tmp/taxi-lock/all.txt
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {
    ".": ("requirements.lock", "The embedded default and PostgreSQL (make install: make demo, make dev)"),
    ".[gcp]": ("requirements-gcp.lock",
               "The default plus the Google Cloud stack, TAXI_LAKE=gcs / TAXI_WAREHOUSE=bigquery (make install-gcp)"),
    ".[gcp,test]": ("requirements-test.lock", "Everything plus the test tools (make test)"),
}
NOT_PINNED = {"taxi-platform", "setuptools", "pip"}  # the project itself; what pip freeze leaves out


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(freeze: Path) -> None:
    spelled = {}
    for line in freeze.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name = line.split("==", 1)[0]
            spelled[normalised(name)] = name
    for spec, (filename, what) in LOCKS.items():
        with tempfile.TemporaryDirectory() as scratch:
            report = Path(scratch) / "report.json"
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                            "--report", str(report), "-c", str(freeze), spec], cwd=ROOT, check=True)
            installs = json.loads(report.read_text())["install"]
        pins = {normalised(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}
        names = sorted((n for n in pins if n not in NOT_PINNED), key=lambda n: spelled.get(n, n).lower())
        lines = [f"# {what}. Regenerate with `make lock`."] + [f"{spelled.get(n, n)}=={pins[n]}" for n in names]
        (ROOT / filename).write_text("\n".join(lines) + "\n")
        print(f"{filename}: {len(names)} packages")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
