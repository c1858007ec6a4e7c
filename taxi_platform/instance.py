"""The Dagster instance (``$DAGSTER_HOME``), made ready before any run: ``taxi-platform instance``.

Two configurations live in the repository and differ only in storage (a unit test keeps them in
step): ``dagster.yaml`` keeps runs, events and schedules in PostgreSQL (``DAGSTER_PG_HOST`` set;
``DAGSTER_PG_PORT``, ``DAGSTER_PG_DB``, ``DAGSTER_PG_USER``, ``DAGSTER_PG_PASSWORD``, defaulting
to 5432, dagster, postgres and empty), ``dagster.dev.yaml`` in SQLite files in ``$DAGSTER_HOME``.

Making the instance means copying the right file to ``$DAGSTER_HOME/dagster.yaml`` and creating
its storage, under a lock. Left to the first run, two first runs at once (two CLI runs, the
daemon and a CLI run) both create the SQLite databases and can leave them with two migration
heads ("more than one head"), broken for every later run. ``make demo`` and ``make dev`` call it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_PG_DEFAULTS = {"DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_USER": "postgres",
                "DAGSTER_PG_PASSWORD": ""}


def instance_config_file(env=None) -> Path:
    """``dagster.yaml`` (PostgreSQL) when DAGSTER_PG_HOST is set, else ``dagster.dev.yaml``."""
    env = os.environ if env is None else env
    return REPO / ("dagster.yaml" if env.get("DAGSTER_PG_HOST") else "dagster.dev.yaml")


def prepare_instance(home: Path | None = None) -> str:
    """Write ``$DAGSTER_HOME/dagster.yaml`` and create the instance's storage (idempotent, one
    process at a time); returns a line saying which instance it is."""
    from dagster import DagsterInstance

    home = Path(home or os.environ.get("DAGSTER_HOME") or REPO / ".dagster_home").absolute()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    source = instance_config_file()
    if source.name == "dagster.yaml":
        for key, value in _PG_DEFAULTS.items():
            os.environ.setdefault(key, value)
    with open(home / ".taxi-instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        target = home / "dagster.yaml"
        if not target.is_file() or target.read_text() != source.read_text():
            shutil.copyfile(source, target)
        with DagsterInstance.get() as instance:
            instance.upgrade()  # creates (or migrates) every storage table, once
            instance.get_runs_count()
    if source.name == "dagster.yaml":
        env = os.environ
        return (f"instance: PostgreSQL {env['DAGSTER_PG_USER']}@{env['DAGSTER_PG_HOST']}:"
                f"{env['DAGSTER_PG_PORT']}/{env['DAGSTER_PG_DB']} (dagster.yaml) in {home}")
    return f"instance: SQLite in {home} (dagster.dev.yaml; set DAGSTER_PG_HOST for PostgreSQL)"
