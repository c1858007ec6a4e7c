"""Errors that mean "this input is bad": they fail a run once, clearly, and are never retried."""

from __future__ import annotations


class BadInputError(Exception):
    """A file or partition that cannot be loaded as it is. The message names the file, the
    partition and (where there is one) the column, and says what to do."""

    def __init__(self, message: str, *, file: str | None = None, partition: str | None = None,
                 column: str | None = None):
        super().__init__(message)
        self.file, self.partition, self.column = file, partition, column

    @property
    def metadata(self) -> dict[str, str]:
        return {k: v for k, v in
                {"file": self.file, "partition": self.partition, "column": self.column}.items() if v}


class NotPublishedError(BadInputError):
    """The source answered 404: the month is not (yet) published there."""


# -- the messages every warehouse backend gives for the same bad month (docs/troubleshooting.md) --

def no_trip_rows(filename: str, partition: str) -> BadInputError:
    return BadInputError(
        f"{filename} (partition {partition}) has a header but no trip rows; the previous load of this "
        "month (if any) is kept. Check the source file.", file=filename, partition=partition)


def too_many_untypable(filename: str, partition: str, rows: int, bad: int,
                       by_column: list[tuple[str, int, str]], max_fraction: float) -> BadInputError:
    """More than ``max_fraction`` of the file's rows cannot be typed; ``by_column``: (column,
    rows, an example value) for every column with text that cannot be typed."""
    detail = "; ".join(f"column {col}: {n} rows, e.g. {example}" for col, n, example in by_column)
    return BadInputError(
        f"{filename} (partition {partition}): {bad} of {rows} rows ({bad / rows:.1%}) cannot be "
        f"typed, more than the {max_fraction:.1%} allowed (TAXI_MAX_QUARANTINE_FRACTION). "
        f"{detail}. Nothing was changed for this month; fix the file, or the column contract "
        "in taxi_platform/schemas.py if TLC changed a type.",
        file=filename, partition=partition, column=by_column[0][0] if by_column else None)


def _deliberately(filename: str, partition: str) -> str:
    return (f"The month loaded before is kept. If {filename} is right, load it deliberately: run "
            f"partition {partition} again with the run tag taxi/reload=true.")


def far_fewer_rows(filename: str, partition: str, rows: int, loaded: int, loaded_from: str,
                   min_share: float) -> BadInputError:
    return BadInputError(
        f"{filename} (partition {partition}) has {rows:,} rows, far fewer than the {loaded:,} loaded "
        f"for the month from {loaded_from} ({rows / loaded:.0%}, below {min_share:.0%}): a cut or "
        f"partial file? {_deliberately(filename, partition)}", file=filename, partition=partition)


def below_published(filename: str, partition: str, rows: int, published: int) -> BadInputError:
    return BadInputError(
        f"{filename} (partition {partition}) has {rows:,} rows, fewer than the {published:,} the TLC "
        f"published for it: a cut or partial file? {_deliberately(filename, partition)}",
        file=filename, partition=partition)


def pickups_outside_month(filename: str, partition: str, rows: int, in_month: int, column: str,
                          min_share: float) -> BadInputError:
    return BadInputError(
        f"{filename} (partition {partition}): only {in_month:,} of {rows:,} pickups ({in_month / rows:.0%}, "
        f"below {min_share:.0%}) fall in {partition}: the trips of another month? (column {column}) "
        f"{_deliberately(filename, partition)}", file=filename, partition=partition, column=column)


def refused_by_gate(filename: str, partition: str, description: str) -> BadInputError:
    return BadInputError(
        f"{filename} (partition {partition}) was refused by the bronze gate, so the month loaded before "
        f"is kept: {description}", file=filename, partition=partition)


# -- which errors are worth a retry (the step retry policy, taxi_platform/steps.py) --------

# PostgreSQL SQLSTATE classes and codes of trouble that passes: connection exceptions (08),
# transaction rollbacks such as serialization failures and deadlocks (40), insufficient resources
# (53), an administrator's shutdown or restart (57P01-57P03), a lock not available in time (55P03).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57P0")
_TRANSIENT_SQLSTATES = {"55P03"}
# Said by libraries that lose a connection or a lock without a typed error of their own.
_TRANSIENT_WORDS = ("could not set lock", "conflicting lock", "server closed the connection",
                    "connection reset", "connection refused", "could not connect", "timed out",
                    "temporarily unavailable", "too many requests", "service unavailable",
                    "serialization failure", "could not serialize", "deadlock detected",
                    "concurrent update", "rate limit")
# Transient types named without importing their libraries (each is optional at run time).
_TRANSIENT_TYPE_NAMES = {
    "TransientSourceError", "LakeChecksumError",  # ours: a cut transfer, bytes that changed in transit
    "OperationalError",  # psycopg2 / SQLAlchemy: the connection went away
    "TransactionRollbackError", "SerializationFailure", "DeadlockDetected", "LockNotAvailable",
    "TooManyRequests", "ServiceUnavailable", "InternalServerError", "BadGateway", "GatewayTimeout",
    "RetryError", "TransportError",  # google.api_core / google.auth
    "ConnectionError", "Timeout", "ChunkedEncodingError",  # requests
    "TransactionException",  # DuckDB: a write-write conflict between transactions
}
_NEVER_TRANSIENT_TYPE_NAMES = {"DownloadGaveUp"}  # retried inside already: one retry layer, not two


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is trouble that passes: a lost or refused
    connection, a timeout, a 5xx or 429, a serialization failure or deadlock, a lock held by
    another process. Bad input and code errors are not: retrying them only repeats the failure."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        names = {cls.__name__ for cls in type(exc).__mro__}
        if names & _NEVER_TRANSIENT_TYPE_NAMES or isinstance(exc, BadInputError):
            return False
        if getattr(exc, "transient", False):  # an error raised again with its secrets masked
            return True
        if isinstance(exc, (ConnectionError, TimeoutError)) or names & _TRANSIENT_TYPE_NAMES:
            return True
        sqlstate = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
        if isinstance(sqlstate, str) and (sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
                                          or sqlstate in _TRANSIENT_SQLSTATES):
            return True
        code = getattr(exc, "code", None)  # google.api_core errors carry the HTTP status
        if isinstance(code, int) and (code == 429 or 500 <= code < 600):
            return True
        text = str(exc).lower()
        if any(word in text for word in _TRANSIENT_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
