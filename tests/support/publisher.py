"""A local HTTP server standing in for a publisher's CDN, with the misbehaviours the real internet
has: 429/503 with Retry-After, transfers cut part-way, byte ranges honoured or ignored, a server
trickling a byte at a time, an HTML page served with 200. It records every request."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field
from typing import Self


@dataclass
class Behaviour:
    payload: bytes = b""
    content_type: str = "application/octet-stream"
    throttle_first: int = 0  # the first N requests get 429 (Retry-After: retry_after)
    unavailable_first: int = 0  # the next N get 503
    retry_after: str | None = "1"
    not_found: bool = False  # every GET answers 404
    cut_first_at: float | None = None  # the first full answer stops after this share of the bytes
    ranges: bool = True  # honour Range (206); False: always the whole file (200)
    trickle_seconds: float | None = None  # send one byte, then sleep this long, and so on
    requests: list = field(default_factory=list)  # (method, path, headers) of every request
    bytes_sent: int = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    behaviour: Behaviour
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _refuse(self, status: int) -> None:
        self.send_response(status)
        if self.behaviour.retry_after is not None:
            self.send_header("Retry-After", self.behaviour.retry_after)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        b = self.behaviour
        b.requests.append(("HEAD", self.path, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(b.payload)))
        self.end_headers()

    def do_GET(self):
        b = self.behaviour
        b.requests.append(("GET", self.path, dict(self.headers)))
        n = len(b.requests)
        if b.not_found:
            return self._refuse(404)
        if n <= b.throttle_first:
            return self._refuse(429)
        if n <= b.throttle_first + b.unavailable_first:
            return self._refuse(503)
        start = 0
        wanted = self.headers.get("Range")
        if wanted and b.ranges and wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[6:-1])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(b.payload) - 1}/{len(b.payload)}")
        else:
            self.send_response(200)
            self.send_header("Accept-Ranges", "bytes" if b.ranges else "none")
        body = b.payload[start:]
        self.send_header("Content-Type", b.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"taxi-test"')
        self.end_headers()
        if b.cut_first_at is not None and start == 0 and not any(
                r[2].get("Range") for r in b.requests[:-1]) and self._first_full_answer():
            body = body[: int(len(b.payload) * b.cut_first_at)]
            self.wfile.write(body)
            b.bytes_sent += len(body)
            self.close_connection = True
            return
        if b.trickle_seconds:
            for i in range(len(body)):
                try:
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                except OSError:
                    return
                b.bytes_sent += 1
                time.sleep(b.trickle_seconds)
            return
        self.wfile.write(body)
        b.bytes_sent += len(body)

    def _first_full_answer(self) -> bool:
        b = self.behaviour
        full_answers = [r for r in b.requests if r[0] == "GET"][b.throttle_first + b.unavailable_first:]
        return len(full_answers) == 1


class Publisher:
    """``with Publisher(Behaviour(payload=...)) as pub: pub.url``: serves the payload at any path."""

    def __init__(self, behaviour: Behaviour):
        self.behaviour = behaviour
        handler = type("Handler", (_Handler,), {"behaviour": behaviour})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
