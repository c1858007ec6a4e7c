"""Small file helpers shared by the layers: checksums, headers, atomic writes."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import tempfile
import zlib
from pathlib import Path
from typing import Iterator

from taxi_platform.errors import BadInputError
from taxi_platform.schemas import TripSchema

CHUNK = 1 << 20


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
    want = schema.sql_names
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
