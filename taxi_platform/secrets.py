"""Keeping secrets out of everything the platform writes: step errors, the event log, compute
logs, metadata, sensor errors and alerts.

A secret is whatever carries a credential: a PostgreSQL connection string (``TAXI_PG_DSN`` holds a
password), a webhook URL (a Slack incoming-webhook URL *is* its token). Libraries echo them in
their own error messages (libpq prints a malformed DSN whole, requests prints the URL it failed
to reach), so every place that handles one re-raises such errors with the secret masked, and
without the original exception chained to it (a chained cause would be logged too).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

from taxi_platform.errors import is_transient

MASK = "***"
_KEY_VALUE_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]*(@)")


def mask_dsn(dsn: str) -> str:
    """A PostgreSQL connection string with its password masked, fit to be shown:
    ``postgresql://u:***@host/db``, ``host=h password=*** dbname=d``. A string that cannot be
    read as either form is not shown at all."""
    if not dsn:
        return dsn
    if "://" in dsn:
        try:
            urlsplit(dsn).port  # noqa: B018  (raises on a malformed URL)
        except ValueError:
            return "<a malformed connection URL, not shown>"
        return _URL_USERINFO.sub(rf"\g<1>{MASK}\g<2>", dsn)
    return _KEY_VALUE_PASSWORD.sub(rf"\g<1>{MASK}", dsn)


def mask_url(url: str) -> str:
    """A URL reduced to its scheme and host (a webhook's path and query are its token)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a malformed URL, not shown>"
    if not parts.scheme or not parts.hostname:
        return "<a URL, not shown>"
    return f"{parts.scheme}://{parts.hostname}/{MASK}"


def secret_parts(secret: str) -> list[str]:
    """The pieces of ``secret`` that must never be shown: the whole string, a password in it,
    a URL's path and query (a token), longest first."""
    parts = {secret}
    match = re.search(r"://[^:/@\s]*:([^@\s]+)@", secret)
    if match:
        parts.add(match.group(1))
    match = _KEY_VALUE_PASSWORD.search(secret)
    if match:
        parts.add(match.group(2).strip("'"))
    if "://" in secret:
        try:
            parts.update(p for p in (urlsplit(secret).path, urlsplit(secret).query) if len(p) > 1)
        except ValueError:
            pass
    return sorted((p for p in parts if len(p) >= 4), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every piece of every secret in ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if not secret:
            continue
        for part in secret_parts(secret):
            text = text.replace(part, MASK)
    return text


class SecretMaskedError(RuntimeError):
    """An error raised again with the secrets in its message masked (its type is named); it
    keeps whether the original was transient, for the retry policy."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@contextlib.contextmanager
def secrets_masked(secrets: Iterable[str]) -> Iterator[None]:
    """Raise any error of the block again with ``secrets`` masked in its message, unchained
    (a library's error can carry a connection string: GX's, SQLAlchemy's)."""
    secrets = [s for s in secrets if s]
    try:
        yield
    except Exception as exc:
        text = str(exc)
        masked = redact(text, secrets)
        if masked == text:
            raise
        raise SecretMaskedError(f"{type(exc).__name__}: {masked}", transient=is_transient(exc)) from None
