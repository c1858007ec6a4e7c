"""Great Expectations on DuckDB: the SQLAlchemy dialect and URL GX validates through."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from duckdb_engine import Dialect as _DuckDBEngineDialect
from sqlalchemy.dialects import registry

from taxi_platform.settings import DEFAULT_DUCKDB_MEMORY_LIMIT


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


def url(path: Path, memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT) -> str:
    """A read-only SQLAlchemy URL of the DuckDB file, through the dialect above."""
    return f"duckdb+taxi_gx:///{quote(str(path))}?access_mode=read_only&memory_limit={quote(memory_limit)}"
