"""The landing area the landing sensor watches: a local folder, or a GCS prefix.

``TAXI_LANDING_DIR`` is a folder (default ``<TAXI_DATA_DIR>/landing``) or ``gs://bucket/prefix/``.
Both list the files under them (sub-folders included) as :class:`LandedFile` with a signature
that changes whenever the file does: ``mtime_ns:size`` for a folder, ``generation:size`` for a
GCS object (every overwrite of an object is a new generation). A GCS object appears only once
its upload is complete, so it needs no settling time; a local file being copied does.

:func:`fetch_landed` copies a landed file (path or ``gs://`` URI) to local disk for the raw
asset, returning its size and sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from taxi_platform.files import CHUNK, atomic_path, sha256_of

GCS_SCHEME = "gs://"


@dataclass(frozen=True)
class LandedFile:
    rel: str  # path under the landing root, '/'-separated
    uri: str  # absolute local path, or gs://bucket/object
    signature: str  # changes whenever the file does
    mtime: float  # seconds since the epoch

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]


def split_gcs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``('bucket', 'a/b')``."""
    bucket, _, name = uri[len(GCS_SCHEME):].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} is not a gs://bucket/... URI")
    return bucket, name


def _gcs_client(project: str = ""):
    from dagster_gcp import GCSResource  # imported here: the local default needs no Google libraries

    return GCSResource(project=project or None).get_client()


class LocalLanding:
    """A landing folder on local disk."""

    needs_settling = True

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def __str__(self) -> str:
        return str(self.folder)

    def exists(self) -> bool:
        return self.folder.is_dir()

    def files(self) -> Iterator[LandedFile]:
        for path in sorted(self.folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                yield LandedFile(path.relative_to(self.folder).as_posix(), str(path.absolute()),
                                 f"{stat.st_mtime_ns}:{stat.st_size}", stat.st_mtime)


class GCSLanding:
    """A landing prefix in a GCS bucket, listed with the google-cloud-storage client that
    dagster-gcp's GCSResource builds (``STORAGE_EMULATOR_HOST`` points it at an emulator)."""

    needs_settling = False

    def __init__(self, uri: str, project: str = ""):
        self.uri = uri if uri.endswith("/") else uri + "/"
        self.bucket, self.prefix = split_gcs_uri(self.uri)
        self.project = project

    def __str__(self) -> str:
        return self.uri

    def exists(self) -> bool:
        return _gcs_client(self.project).bucket(self.bucket).exists()

    def files(self) -> Iterator[LandedFile]:
        blobs = _gcs_client(self.project).list_blobs(self.bucket, prefix=self.prefix)
        for blob in sorted(blobs, key=lambda b: b.name):
            if blob.name.endswith("/"):
                continue  # a "folder" placeholder
            yield LandedFile(blob.name[len(self.prefix):], f"{GCS_SCHEME}{self.bucket}/{blob.name}",
                             f"{blob.generation}:{blob.size}", blob.updated.timestamp())


def landing_area(location: str, project: str = "") -> LocalLanding | GCSLanding:
    """The landing area at ``location`` (a folder or ``gs://bucket/prefix``)."""
    if location.startswith(GCS_SCHEME):
        return GCSLanding(location, project)
    return LocalLanding(Path(location))


def landed_exists(uri: str, project: str = "") -> bool:
    if uri.startswith(GCS_SCHEME):
        bucket, name = split_gcs_uri(uri)
        return _gcs_client(project).bucket(bucket).blob(name).exists()
    return Path(uri).is_file()


def fetch_landed(uri: str, target: Path, project: str = "") -> tuple[int, str]:
    """Copy the landed file at ``uri`` to ``target`` (which appears only when complete);
    returns ``(size, sha256)``."""
    with atomic_path(target) as tmp:
        if uri.startswith(GCS_SCHEME):
            bucket, name = split_gcs_uri(uri)
            # The client checks the download against the CRC32C that GCS keeps for the object.
            _gcs_client(project).bucket(bucket).blob(name).download_to_filename(str(tmp))
            return tmp.stat().st_size, sha256_of(tmp)
        digest, size = hashlib.sha256(), 0
        with open(uri, "rb") as src, open(tmp, "wb") as out:  # one pass: copy and hash
            for block in iter(lambda: src.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
                size += len(block)
    return size, digest.hexdigest()
