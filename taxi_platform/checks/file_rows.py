"""The trip rows of a month's file, counted from the file itself (never from what a warehouse
loaded): the first number of the row reconciliation (taxi_platform/checks/reconciliation.py).

- A CSV (gzipped or not: decided by the content, as everywhere) is counted as its non-empty
  lines minus the header line, streamed a megabyte at a time (a 7-million-row month's 230 MB
  of gzip in about two seconds). Lines may end in CRLF or LF, mixed; the last line may lack its
  newline; an empty line (``\\n`` or ``\\r\\n`` alone) is no row, as every backend's reader skips it.
  A quoted field spanning lines would count once per line: the TLC's files have none.
- A Parquet file: the row count in its footer (``num_rows``), nothing read beyond it.
"""

from __future__ import annotations

import os
import re
import zlib

from taxi_platform.files import CHUNK, GZIP_MAGIC, PARQUET_MAGIC


def file_rows(path: str | os.PathLike) -> int:
    """The data rows of the CSV (.csv or .csv.gz) or Parquet file at ``path``."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic == PARQUET_MAGIC:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    lines = _LineCounter()
    with open(path, "rb") as handle:
        if magic[:2] == GZIP_MAGIC:
            for block in _gunzipped(handle):
                lines.feed(block)
        else:
            for block in iter(lambda: handle.read(CHUNK), b""):
                lines.feed(block)
    return max(lines.close() - 1, 0)  # the header is no row


def _gunzipped(handle):
    """The decompressed bytes of a gzip file (every member, as gzip -d does), CHUNK at a time.
    A truncated stream raises EOFError, a corrupt one zlib.error."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    while True:
        data = handle.read(CHUNK)
        if not data:
            if not inflate.eof:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            return
        while data:
            yield inflate.decompress(data)
            if inflate.eof:  # a member ended: the rest is the next member (or trailing padding)
                data = inflate.unused_data
                if not data.strip(b"\x00"):
                    data = b""
                    break
                inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = b""


# An empty line: a line end right after another one (or at the start of the stream).
_EMPTY_LINE = re.compile(rb"(?<=\n)\r?\n")


class _LineCounter:
    """Counts the non-empty lines of a byte stream fed in blocks of any size."""

    def __init__(self):
        self.lines = 0
        self.context = b"\n"  # the stream's last two bytes (the start counts as a line end)
        self.unended = b""  # what follows the last line end so far

    def feed(self, block: bytes) -> None:
        if not block:
            return
        ends = block.count(b"\n")
        self.lines += ends
        seam = self.context + block[:2]
        # Empty lines are rare: looked for (exactly) only in a block that has one.
        if b"\n\n" in seam or b"\n\r\n" in seam or b"\n\n" in block or b"\n\r\n" in block:
            text = self.context + block
            self.lines -= sum(1 for m in _EMPTY_LINE.finditer(text) if m.end() > len(self.context))
        self.context = block[-2:] if len(block) > 1 else self.context[-1:] + block
        last = block.rfind(b"\n")
        self.unended = block[last + 1:] if last >= 0 else self.unended + block

    def close(self) -> int:
        """The non-empty lines fed (a last line without its line end included)."""
        return self.lines + (self.unended not in (b"", b"\r"))
