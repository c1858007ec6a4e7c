"""Which errors a step retries (taxi_platform.errors.is_transient): trouble that passes, never bad
input or a code error, whatever wraps it."""

import duckdb
import psycopg2
import pytest
import requests
from google.api_core import exceptions as google_errors

from taxi_platform.errors import BadInputError, is_transient
from taxi_platform.secrets import secrets_masked
from taxi_platform.sources.http import DownloadGaveUp, TransientSourceError


class _PgError(psycopg2.Error):
    def __init__(self, pgcode):
        super().__init__("error")
        self._code = pgcode

    @property
    def pgcode(self):
        return self._code


@pytest.mark.parametrize("error", [
    ConnectionResetError("peer reset"), TimeoutError("read timed out"),
    requests.ConnectionError("refused"), requests.Timeout("slow"),
    TransientSourceError("cut at byte 100"),
    psycopg2.OperationalError("server closed the connection unexpectedly"),
    _PgError("40001"), _PgError("40P01"), _PgError("08006"), _PgError("57P01"), _PgError("55P03"),
    google_errors.TooManyRequests("slow down"), google_errors.ServiceUnavailable("try later"),
    duckdb.IOException('Could not set lock on file "w.duckdb": Conflicting lock is held'),
    duckdb.TransactionException("Conflict on tuple deletion"),
    RuntimeError("dbt failed: could not connect to server: Connection refused"),
], ids=lambda e: type(e).__name__)
def test_trouble_that_passes_is_transient(error):
    assert is_transient(error)


@pytest.mark.parametrize("error", [
    KeyError("vendorid"), ZeroDivisionError(), TypeError("bad argument"),
    BadInputError("yellow_tripdata_2019-01.csv.gz (partition 2019-01) has no trip rows"),
    DownloadGaveUp("giving up after 5 attempts"),  # retried inside already: one layer of retries
    psycopg2.errors.UndefinedColumn("column \"vendorid\" does not exist"),
    _PgError("22P02"),  # invalid text representation: bad input
    google_errors.BadRequest("Syntax error"),
    duckdb.ConversionException("Could not convert string 'abc' to INT32"),
], ids=lambda e: type(e).__name__)
def test_bad_input_and_code_errors_are_not_transient(error):
    assert not is_transient(error)


def _raised_from(error: Exception, cause: Exception) -> Exception:
    """``error`` as ``raise error from cause`` leaves it (its ``__cause__``)."""
    error.__cause__ = cause
    return error


def test_an_error_raised_from_a_transient_one_is_transient_and_bad_input_never_is():
    assert is_transient(_raised_from(RuntimeError("loading the month failed"), ConnectionResetError("reset")))
    assert not is_transient(_raised_from(BadInputError("the file is cut"), ConnectionResetError("reset")))


def test_an_error_raised_again_with_its_secret_masked_stays_transient():
    dsn = "postgresql://u:SeCrEt123@db.example/taxi"
    with pytest.raises(Exception) as raised, secrets_masked([dsn]):
        raise psycopg2.OperationalError(f"could not connect to server: {dsn}")
    assert "SeCrEt123" not in str(raised.value)
    assert is_transient(raised.value)
