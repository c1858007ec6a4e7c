"""What every step shares: the warehouse pool, and which failures a step retries and how.
Transient trouble (taxi_platform.errors.is_transient) waits and tries again under one retry
policy; everything else fails the step at once, with its message on top. Every asset, dbt step and GX check runs its body through
:func:`retried_only_if_transient` under :data:`TRANSIENT_RETRY_POLICY`."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator

from dagster import Backoff, Failure, Jitter, RetryPolicy, RetryRequested

from taxi_platform.errors import BadInputError, is_transient

# Steps that write the warehouse share one pool (Kestra's `concurrency: limit: 1`).
WAREHOUSE_POOL = "taxi_warehouse"

# Transient trouble (connection loss, 5xx, a busy database) is retried with exponential
# backoff and jitter; bad input and code errors fail once (retried_only_if_transient below).
# The download retries by itself (sources/http.py), so a download that gave up is not retried again.
TRANSIENT_RETRY_POLICY = RetryPolicy(
    max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


@contextlib.contextmanager
def fails_at_once_unless_transient() -> Iterator[None]:
    """Let transient trouble through to the retry policy (taxi_platform.errors.is_transient: a lost
    connection, a 5xx or 429, a serialization failure, a lock held elsewhere); turn everything else
    (bad input, a code error, a download that used up its own retries) into a Dagster Failure with
    the message on top and no retry: asking again would only repeat it."""
    try:
        yield
    except (Failure, RetryRequested):
        raise
    except BadInputError as exc:
        raise Failure(description=str(exc), metadata=exc.metadata, allow_retries=False) from exc
    except Exception as exc:
        if is_transient(exc):
            raise
        raise Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc


def run_inside(compute: Callable, block: Callable[..., contextlib.AbstractContextManager]) -> Callable:
    """``compute`` (an asset's or a check's body, a generator or not) run inside the context
    manager ``block(*args, **kwargs)`` makes of its arguments; Dagster still sees its parameters."""
    if inspect.isgeneratorfunction(compute):
        @functools.wraps(compute)
        def generating(*args, **kwargs):
            with block(*args, **kwargs):
                yield from compute(*args, **kwargs)
        return generating

    @functools.wraps(compute)
    def returning(*args, **kwargs):
        with block(*args, **kwargs):
            return compute(*args, **kwargs)
    return returning


def in_one_session(compute: Callable) -> Callable:
    """``compute`` (a body with a ``warehouse`` resource) run with the warehouse kept open for
    it (``WarehouseResource.session``): DuckDB opens its file once for the step's dozen queries."""
    return run_inside(compute, lambda *args, warehouse, **kwargs: warehouse.session())


def retried_only_if_transient(compute: Callable) -> Callable:
    """``compute`` (an asset's or a check's body, a generator or not) run inside
    :func:`fails_at_once_unless_transient`; Dagster still sees its parameters."""
    return run_inside(compute, lambda *args, **kwargs: fails_at_once_unless_transient())
