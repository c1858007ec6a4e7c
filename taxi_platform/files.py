"""Small file helpers shared by the layers: checksums, headers, atomic writes, what a file is
(by its content, never its name) and line endings."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from taxi_platform.errors import BadInputError
from taxi_platform.schemas import TripSchema

CHUNK = 1 << 20
GZIP_MAGIC, PARQUET_MAGIC = b"\x1f\x8b", b"PAR1"
GZIP, CSV, PARQUET = "gzip", "csv", "parquet"  # what a published file can be


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only if the block
    succeeds, remove it otherwise (Kestra's PurgeCurrentExecutionFiles, done by the OS rename)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


def open_text(path: str | os.PathLike):
    """Open a .csv or .csv.gz file as text (gzip detected by its magic bytes, not its name)."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, "rt", encoding="utf-8", newline="")


def read_header(path: str | os.PathLike, *, file: str, partition: str) -> list[str]:
    """The column names on the file's first line. A file that is empty, or not readable as
    (gzipped) UTF-8 text, is a BadInputError naming the file."""
    try:
        with open_text(path) as handle:
            line = handle.readline()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise BadInputError(
            f"{file} (partition {partition}) cannot be read as gzipped CSV: {exc}. "
            "The download is probably truncated or corrupt: re-materialize its raw asset.",
            file=file, partition=partition) from exc
    line = line.lstrip("\ufeff").rstrip("\r\n")
    if not line.strip():
        raise BadInputError(
            f"{file} (partition {partition}) is empty: it has no header line. "
            "Check the source, then re-materialize its raw asset.",
            file=file, partition=partition)
    return [name.strip().strip('"') for name in line.split(",")]


def check_header(header: list[str], schema: TripSchema, *, file: str, partition: str) -> None:
    """The schema contract: the file's columns must be the colour's columns, in order
    (names compared case-insensitively). Any difference is reported column by column."""
    got = [name.lower() for name in header]
    want = schema.required
    if got == want:
        return
    missing = [c for c in want if c not in got]
    extra = [c for c in got if c not in want]
    problems = []
    if missing:
        problems.append("missing column" + "s" * (len(missing) > 1) + " " + ", ".join(missing))
    if extra:
        problems.append("unexpected column" + "s" * (len(extra) > 1) + " " + ", ".join(extra))
    if not problems:
        moved = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
        problems.append(f"column {want[moved]} is not in position {moved + 1} (found {got[moved]})")
    raise BadInputError(
        f"{file} (partition {partition}) does not match the {schema.colour} column contract: "
        + "; ".join(problems)
        + f". Expected: {','.join(schema.header)}. If TLC changed the layout, update "
        "taxi_platform/schemas.py (and the GX bronze suite) before loading this month.",
        file=file, partition=partition, column=(missing + extra)[0] if missing or extra else None)


def _looks_like_csv(head: bytes) -> str | None:
    """None when ``head`` (a file's first bytes, decompressed) reads as the start of a CSV
    file; else what it looks like instead."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text:
        return "it is empty"
    if text[:1] in (b"<", b"{", b"["):
        first = text.split(b"\n", 1)[0][:60].decode("utf-8", "replace").strip()
        kind = "an HTML page" if text[:1] == b"<" else "JSON"
        return f"it starts with {first!r} ({kind}?)"
    first_line = text.split(b"\n", 1)[0]
    if b"," not in first_line or b"\x00" in text:
        return f"its first line {first_line[:60].decode('utf-8', 'replace')!r} is not a CSV header"
    return None


def sniff(path: str | os.PathLike) -> tuple[str | None, str]:
    """What the file at ``path`` is, from its content: ``(GZIP, "")`` for gzipped CSV,
    ``(CSV, "")`` for plain CSV, ``(PARQUET, "")``, or ``(None, why)`` for anything else (an
    HTML error page served with 200, an empty file, ...)."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if head[:4] == PARQUET_MAGIC:
        return PARQUET, ""
    if head[:2] == GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as stream:
                head = stream.read(1 << 16)
        except (OSError, EOFError, zlib.error):
            return GZIP, ""  # a truncated or corrupt gzip: bronze names the problem
        problem = _looks_like_csv(head)
        return (None, f"once decompressed, {problem}") if problem else (GZIP, "")
    problem = _looks_like_csv(head)
    return (None, problem) if problem else (CSV, "")


def gzip_in_place(path: Path) -> None:
    """Compress a plain file into gzip under the same name (atomically)."""
    with atomic_path(path) as tmp, open(path, "rb") as src, open(tmp, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as out:
        shutil.copyfileobj(src, out, CHUNK)


def has_mixed_line_endings(path: str | os.PathLike) -> bool:
    """True when the (gzipped) file ends some lines with CRLF and others with a bare LF (False
    for a file that cannot be read to its end: its own error is the one to report)."""
    crlf = lf = 0
    previous = b""
    try:
        with open_binary(path) as stream:
            for block in iter(lambda: stream.read(CHUNK), b""):
                block = previous + block
                previous = block[-1:] if block.endswith(b"\r") else b""
                crlf += block.count(b"\r\n")
                lf += block.count(b"\n")
                if crlf and lf > crlf:
                    return True
    except (OSError, EOFError, zlib.error):
        return False
    return False


class LineEndingsNormalized(io.RawIOBase):
    """A binary stream's bytes with every CRLF read as LF (for a file whose lines end both
    ways, which COPY and DuckDB's CSV reader refuse). A CR cut off at the end of a read is held
    back until the next one."""

    def __init__(self, stream):
        self.stream, self.held, self.done = stream, b"", False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while True:
            block = self.stream.read(CHUNK if size is None or size < 0 else max(size, 2))
            if not block:
                out, self.held = self.held, b""
                return out
            block = self.held + block
            self.held = b"\r" if block.endswith(b"\r") else b""
            if self.held:
                block = block[:-1]
            out = block.replace(b"\r\n", b"\n")
            if out:
                return out

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def open_binary(path: str | os.PathLike) -> Iterator[io.BufferedIOBase]:
    """The file's bytes, gunzipped on the fly when it is gzip (read once: works on pipes)."""
    with open(path, "rb", buffering=CHUNK) as raw:
        if raw.peek(2)[:2] == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
        else:
            yield raw


@contextlib.contextmanager
def normalized_copy(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary plain copy of the (gzipped) CSV file with LF line endings, removed when the
    block ends."""
    fd, tmp = tempfile.mkstemp(prefix="taxi-lf-", suffix=".csv")
    os.close(fd)
    try:
        with open_binary(path) as stream, open(tmp, "wb") as out:
            shutil.copyfileobj(LineEndingsNormalized(stream), out, CHUNK)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def parquet_columns(path: str | os.PathLike, *, file: str, partition: str) -> list[str]:
    """The column names of a Parquet file, from its footer (the data is not read)."""
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception as exc:  # noqa: BLE001  pyarrow's errors have no common base class
        raise BadInputError(
            f"{file} (partition {partition}) cannot be read as Parquet: {str(exc).splitlines()[0]}. "
            "The download is probably truncated or corrupt: re-materialize its raw asset.",
            file=file, partition=partition) from None


def check_parquet_columns(names: list[str], schema: TripSchema, *, file: str, partition: str) -> list[str]:
    """The Parquet contract: every required column present, matched by name case-insensitively
    (``Airport_fee`` is ``airport_fee``); returns the columns the contract does not know (kept in
    bronze as they are, reported, not loaded into silver)."""
    got = [name.lower() for name in names]
    missing = [c for c in schema.required if c not in got]
    if missing:
        raise BadInputError(
            f"{file} (partition {partition}) does not match the {schema.colour} column contract: missing "
            f"column{'s' * (len(missing) > 1)} {', '.join(missing)} (matched by name, whatever the case). "
            f"It has: {', '.join(names)}. If TLC changed the layout, update taxi_platform/schemas.py "
            "before loading this month.", file=file, partition=partition, column=missing[0])
    known = set(schema.sql_names)
    return [name for name in got if name not in known]


@dataclass(frozen=True)
class FileContract:
    """A month's file checked against its colour's column contract, and how to read it."""

    format: str  # CSV (gzipped or not) or PARQUET
    columns: tuple[tuple[str, str], ...]  # (name in the file, bronze column) of every column, in file order
    unknown: list[str]  # bronze columns of the file's columns the contract does not know
    gzipped: bool = False
    layout: str | None = None  # an older layout (yellow 2009, 2010), mapped onto the contract before landing
    derived: bool = False  # a local copy derived from the published file (an older layout mapped): land it, not the lake object

    @classmethod
    def of(cls, path: str | os.PathLike, schema: TripSchema, *, filename: str, partition: str) -> FileContract:
        """The file's contract, or a BadInputError naming the file, partition and column."""
        kind, _ = sniff(path)
        if kind == PARQUET:
            names = parquet_columns(path, file=filename, partition=partition)
            from taxi_platform.sources.layouts import layout_of

            older = layout_of(names, schema)
            if older:  # its contract columns are derived first (taxi_platform/sources/layouts.py)
                return cls(PARQUET, tuple((n, n.lower()) for n in names), [], layout=older.name)
            unknown = check_parquet_columns(names, schema, file=filename, partition=partition)
            return cls(PARQUET, tuple((n, n.lower()) for n in names), unknown)
        header = read_header(path, file=filename, partition=partition)
        check_header(header, schema, file=filename, partition=partition)
        return cls(CSV, tuple(zip(header, schema.required, strict=True)), [], gzipped=kind == GZIP)


class ParquetAsCsv(io.RawIOBase):
    """A Parquet file's rows as CSV bytes (no header), read a batch at a time: every column as
    the text DuckDB casts it to (a double as its shortest round-trip decimal, a timestamp as
    ``YYYY-MM-DD HH:MM:SS``), NULL as an empty field, an empty string quoted. This is how a
    warehouse without a Parquet reader (PostgreSQL's COPY) takes a month, never all of it in
    memory, with the same text the DuckDB warehouse lands."""

    def __init__(self, path: str | os.PathLike, columns: list[str], batch_rows: int = 100_000):
        import duckdb
        import pyarrow.csv as pacsv

        self._conn = duckdb.connect()
        self._conn.execute("SET threads = 2")
        casts = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in columns)
        self._batches = self._conn.sql(f"SELECT {casts} FROM read_parquet(?)",
                                       params=[str(path)]).to_arrow_reader(batch_rows)
        self._options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        self._write_csv, self._buffer = pacsv.write_csv, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                batch = self._batches.read_next_batch()
            except StopIteration:
                break
            sink = io.BytesIO()
            self._write_csv(batch, sink, self._options)
            self._buffer += sink.getvalue()
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def close(self) -> None:
        self._conn.close()
        super().close()
