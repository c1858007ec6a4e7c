"""Opening the committed Great Expectations context (``gx/``) against the configured warehouse.

The context in ``gx/`` is environment-free: its one SQL data source reads its connection
string from ``TAXI_GX_WAREHOUSE_URL``, and the validation results and the Data Docs site go to
folders named by ``TAXI_GX_RESULTS_DIR`` and ``TAXI_GX_DATA_DOCS_DIR``. :func:`open_context`
sets those three from the warehouse resource and the settings, so nothing in ``gx/`` changes
between machines or backends.

**The backend choice lives in one place**: :func:`warehouse_url` (a warehouse resource ->
the SQLAlchemy URL GX connects with): DuckDB (read-only, through the dialect below) and
PostgreSQL (psycopg2 with the warehouse resource's DSN, or libpq's PG* variables). A new backend
adds one branch there; the suites, the checkpoints and the asset checks stay as they are,
because validations are plain SQL that GX generates for the dialect (pushed down: the batch is
``WHERE filename = '<the month's file>'`` on the table, nothing is pulled into pandas; the mart
reconciliation is one SQL query written in the SQL both warehouses speak).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from duckdb_engine import Dialect as _DuckDBEngineDialect
from sqlalchemy.dialects import registry

from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from taxi_platform.warehouse.postgres import PostgresWarehouseResource
from taxi_platform.warehouse import WarehouseResource
from taxi_platform.settings import Settings

if TYPE_CHECKING:
    from great_expectations.data_context import FileDataContext

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the repository: gx/ lives here
GX_DIR = PROJECT_ROOT / "gx"

DATASOURCE = "taxi_warehouse"  # the one SQL data source in gx/great_expectations.yml
BATCH_BY_FILE = "by_file"  # batch definition on every table asset: one batch per `filename`
DATA_DOCS_SITE = "local_site"

URL_VAR = "TAXI_GX_WAREHOUSE_URL"
RESULTS_VAR = "TAXI_GX_RESULTS_DIR"
DATA_DOCS_VAR = "TAXI_GX_DATA_DOCS_DIR"


class ReadOnlyDuckDBDialect(_DuckDBEngineDialect):
    """duckdb_engine without transactions, for GX's read-only validations.

    duckdb_engine hands out the DuckDB connection itself as the DBAPI cursor, so the
    ROLLBACK SQLAlchemy issues when GX returns a connection to the pool discards the result
    GX has not fetched yet: every metric comes back empty (great_expectations#11579). GX only
    reads, so running each statement in DuckDB's autocommit mode is exact.

    ``dialect`` points at the class itself because GX picks its SQL for regex and LIKE by
    ``issubclass(dialect.dialect, <postgres dialect>)``; duckdb_engine's dialect is a
    PostgreSQL dialect, and DuckDB understands PostgreSQL's ``~`` and ``LIKE``.
    """

    supports_statement_cache = False

    def do_begin(self, dbapi_connection) -> None:
        pass

    def do_rollback(self, dbapi_connection) -> None:
        pass

    def do_commit(self, dbapi_connection) -> None:
        pass


ReadOnlyDuckDBDialect.dialect = ReadOnlyDuckDBDialect  # see the docstring
registry.register("duckdb.taxi_gx", __name__, "ReadOnlyDuckDBDialect")


def warehouse_url(warehouse: WarehouseResource) -> str:
    """The SQLAlchemy URL GX validates through, for the configured warehouse (the one place
    that knows the backend)."""
    if isinstance(warehouse, DuckDBWarehouseResource):
        path = Path(warehouse.path).absolute()
        return (f"duckdb+taxi_gx:///{quote(str(path))}?access_mode=read_only"
                f"&memory_limit={quote(warehouse.memory_limit)}")
    if isinstance(warehouse, PostgresWarehouseResource):
        # psycopg2 gets the resource's DSN (a libpq URL or key=value string) as it is; with none,
        # libpq reads the PG* variables when connecting, as the warehouse resource does.
        dsn = warehouse.resolved_dsn()
        query = urlencode({**({"dsn": dsn} if dsn else {}), "application_name": f"{warehouse.application_name}_gx"},
                          quote_via=quote)
        return f"postgresql+psycopg2:///?{query}"
    raise NotImplementedError(
        f"the GX checks do not know the {warehouse.name!r} warehouse yet: add its SQLAlchemy URL "
        "to taxi_platform/checks/gx_context.py:warehouse_url (e.g. bigquery://project/dataset)")


def data_docs_dir(settings: Settings | None = None) -> Path:
    return (settings or Settings.from_env()).data_dir / "gx_data_docs"


def results_dir(settings: Settings | None = None) -> Path:
    return (settings or Settings.from_env()).data_dir / "gx_validations"


def set_context_env(url: str, settings: Settings | None = None) -> None:
    """Point the variables gx/great_expectations.yml refers to at this environment."""
    settings = settings or Settings.from_env()
    os.environ[URL_VAR] = url
    os.environ[RESULTS_VAR] = str(results_dir(settings))
    os.environ[DATA_DOCS_VAR] = str(data_docs_dir(settings))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def load_context(project_root: Path = PROJECT_ROOT) -> FileDataContext:
    import great_expectations as gx

    if not (project_root / "gx" / "great_expectations.yml").is_file():
        raise FileNotFoundError(
            f"no Great Expectations context at {project_root / 'gx'}: run `make gx-suites`")
    return gx.get_context(mode="file", project_root_dir=str(project_root))


def close_context(context: FileDataContext) -> None:
    """Close every connection GX opened: DuckDB allows one process on the file at a time, so
    the next step must find it free."""
    for datasource in context.data_sources.all().values():
        engine = getattr(datasource, "_execution_engine", None)
        if engine is not None:
            engine.close()
        sa_engine = getattr(datasource, "_engine", None)
        if sa_engine is not None:
            sa_engine.dispose()


@contextlib.contextmanager
def open_context(warehouse: WarehouseResource, settings: Settings | None = None,
                 project_root: Path = PROJECT_ROOT) -> Iterator[FileDataContext]:
    """The gx/ context connected to ``warehouse``; its connections are closed on exit."""
    set_context_env(warehouse_url(warehouse), settings)
    context = load_context(project_root)
    try:
        yield context
    finally:
        close_context(context)
