"""One HTTP download, done the way a publisher's CDN deserves: streamed to disk, checksummed, resumed,
bounded in time.

- The bytes land in ``<target>.part`` and the file appears under its name only when complete.
- A transfer cut part-way resumes from the bytes already on disk with a ``Range`` request
  (``If-Range`` with the first answer's ETag or Last-Modified, so a file that changed meanwhile
  is sent whole); a server that ignores ranges (200 instead of 206) sends it whole again.
  The sha256 covers the whole file however many pieces it came in.
- 429 and 503 answers wait for their ``Retry-After``; connection errors, cut transfers and other
  5xx answers are retried with exponential backoff and jitter. This is the one retry layer of a
  download: when it gives up, the step is not retried again around it.
- The whole download, retries and waits included, ends within ``deadline_seconds``: a server
  trickling a byte at a time cannot hold a run for ever.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3

CHUNK = 1 << 20


class TransientSourceError(Exception):
    """A connection error, a cut transfer, a 5xx or 429 answer: worth trying again."""


class DownloadGaveUp(TransientSourceError):
    """The download kept failing (attempts or deadline used up): transient trouble that outlasted
    its own retries. The step fails without retrying it once more."""


class NotFound(Exception):
    """The server answered 404."""


class Refused(Exception):
    """Another 4xx answer: asking again will not help."""


@dataclass(frozen=True)
class Downloaded:
    size: int
    sha256: str
    attempts: int
    requests: int
    resumed: bool  # some bytes came by a Range request


def _retry_after(response: requests.Response, default: float) -> float:
    """Seconds a 429/503 answer asks us to wait (a number or an HTTP date), else ``default``."""
    value = (response.headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    return default


def download(url: str, target: Path, *, deadline_seconds: float, timeout_seconds: float = 60.0,
             max_attempts: int = 5, backoff_seconds: float = 1.0, log=None) -> Downloaded:
    """Fetch ``url`` into ``target`` (see the module docstring). Raises :class:`NotFound` on
    404, :class:`Refused` on another 4xx, :class:`DownloadGaveUp` when attempts or time run out."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    part.unlink(missing_ok=True)
    deadline = time.monotonic() + deadline_seconds
    digest, have, validator = hashlib.sha256(), 0, None
    attempts = requests_made = 0
    resumed, delay, last_error = False, backoff_seconds, "no attempt made"
    try:
        while attempts < max_attempts:
            attempts += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            headers = {"Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
                if validator:
                    headers["If-Range"] = validator
            wait = None
            try:
                requests_made += 1
                with requests.get(url, stream=True, headers=headers,
                                  timeout=(min(timeout_seconds, remaining), min(timeout_seconds, remaining))) as r:
                    if r.status_code == 404:
                        raise NotFound(url)
                    if r.status_code in (429, 503):
                        wait = _retry_after(r, delay)
                        raise TransientSourceError(f"HTTP {r.status_code} from the server"
                                                   + (f" (Retry-After {wait:.0f}s)" if "Retry-After" in r.headers else ""))
                    if r.status_code >= 500:
                        raise TransientSourceError(f"HTTP {r.status_code} from the server")
                    if r.status_code == 416 and have:  # our range starts past the end: start over
                        digest, have = hashlib.sha256(), 0
                        raise TransientSourceError("the server refused to resume (416)")
                    if r.status_code >= 400:
                        raise Refused(f"HTTP {r.status_code}")
                    total = None
                    if r.status_code == 206 and have:
                        start, _, size = (r.headers.get("Content-Range") or "").partition(" ")[2].partition("/")
                        if not start.startswith(f"{have}-"):
                            raise TransientSourceError(f"the server resumed at {start!r}, not at byte {have}")
                        total = int(size) if size.isdigit() else None
                        resumed = True
                    else:  # 200: the whole file (the first answer, or a server that ignores ranges)
                        digest, have = hashlib.sha256(), 0
                        validator = r.headers.get("ETag") or r.headers.get("Last-Modified")
                        length = r.headers.get("Content-Length")
                        total = int(length) if length and length.isdigit() else None
                    with open(part, "ab" if have else "wb") as out:
                        out.truncate(have)
                        while True:
                            # read1: whatever has arrived (up to CHUNK), so the deadline is
                            # checked between small reads, not after a megabyte that never comes
                            block = r.raw.read1(CHUNK, decode_content=False)
                            if not block:
                                break
                            out.write(block)
                            digest.update(block)
                            have += len(block)
                            if time.monotonic() > deadline:
                                raise DownloadGaveUp(
                                    f"not finished within {deadline_seconds:.0f}s "
                                    f"({have:,} bytes so far); TAXI_DOWNLOAD_DEADLINE_SECONDS sets the limit")
                    if total is not None and have < total:
                        raise TransientSourceError(f"connection closed after {have:,} of {total:,} bytes")
                    os.replace(part, target)
                    return Downloaded(have, digest.hexdigest(), attempts, requests_made, resumed)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            except TransientSourceError as exc:
                last_error = str(exc)
            if part.exists():  # what arrived is kept for a resume; the digest follows the file
                have = part.stat().st_size
            if attempts >= max_attempts:
                break
            pause = wait if wait is not None else delay * (0.5 + random.random())  # jitter
            pause = min(pause, max(0.0, deadline - time.monotonic()))
            if log:
                log.warning(f"{target.name}: attempt {attempts} failed ({last_error}); "
                            f"{'resuming' if have else 'retrying'} in {pause:.1f}s"
                            + (f" from byte {have:,}" if have else ""))
            time.sleep(pause)
            delay *= 2
        if time.monotonic() >= deadline:
            raise DownloadGaveUp(f"not finished within {deadline_seconds:.0f}s ({last_error}); "
                                 "TAXI_DOWNLOAD_DEADLINE_SECONDS sets the limit")
        raise DownloadGaveUp(f"giving up after {attempts} attempts: {last_error}")
    finally:
        part.unlink(missing_ok=True)
