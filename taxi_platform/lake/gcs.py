"""The cloud lake: a Google Cloud Storage bucket (``TAXI_LAKE=gcs``). The Google libraries are
imported where they are used: the default install (a local lake) does not have them
(``make install-gcp`` does).

Settings use Kestra's key names: ``GCP_PROJECT_ID``, ``GCP_BUCKET_NAME``, ``GCP_LOCATION``
(where a missing bucket is created); credentials come the Google way, from
``GOOGLE_APPLICATION_CREDENTIALS`` (or the machine's default credentials). With
``STORAGE_EMULATOR_HOST`` set, the client talks to that emulator without credentials.

Objects are ``gs://<bucket>/<prefix><colour>/<colour>_tripdata_YYYY-MM.csv.gz``. Each carries
its sha256 and size as object metadata (the platform's checksum, the same one the local lake
keeps in a sidecar): ``put`` compares them with the local file's and skips the upload when the
same bytes are stored. Big files go up as resumable uploads in chunks (a dropped connection
resumes instead of restarting); every upload and download is verified by the client against
the CRC32C GCS computes. ``local_copy`` downloads to a temporary file removed when the block
ends, success or not; a download cut part-way resumes from the bytes already on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

from dagster import get_dagster_logger
from pydantic import Field

from taxi_platform.files import sha256_of
from taxi_platform.lake import LakeObject, LakeResource
from taxi_platform.settings import setting

_MIB = 1024 * 1024


class LakeChecksumError(RuntimeError):
    """The bytes read back from the lake are not the bytes stored (transient: retried)."""


class GCSLakeResource(LakeResource):
    ENV_FIELDS: ClassVar[dict[str, str]] = {
        "project": "GCP_PROJECT_ID", "bucket": "GCP_BUCKET_NAME", "location": "GCP_LOCATION"}

    project: str = Field(default_factory=setting("gcp_project_id"),
                         description="GCP_PROJECT_ID (empty: from the credentials)")
    bucket: str = Field(default_factory=setting("gcp_bucket_name"), description="GCP_BUCKET_NAME")
    location: str = Field(default_factory=setting("gcp_location"),
                          description="GCP_LOCATION, where a missing bucket is created")
    prefix: str = Field(default="", description="object name prefix inside the bucket, e.g. 'taxi/'")
    resumable_threshold_mib: int = Field(default=8, description="files above this size upload resumably")
    chunk_mib: int = Field(default=16, description="resumable upload chunk (a multiple of 256 KiB)")
    tmp_dir: str = Field(default="", description="where local_copy downloads to (empty: the system's)")

    def client(self):
        """A google.cloud.storage.Client from dagster-gcp's GCSResource."""
        from dagster_gcp import GCSResource

        return GCSResource(project=self.project or None).get_client()

    def _blob(self, key: str, client=None):
        return (client or self.client()).bucket(self.bucket).blob(self.prefix + key)

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{self.prefix}{key}"

    def ensure_bucket(self) -> bool:
        """Create the bucket in ``location`` if it is missing; True when created."""
        from google.api_core.exceptions import Conflict, NotFound

        client = self.client()
        try:
            client.get_bucket(self.bucket)
            return False
        except NotFound:
            pass
        try:
            client.create_bucket(self.bucket, location=self.location, project=self.project or None)
            return True
        except Conflict:  # created meanwhile by someone else
            return False

    def set_up(self) -> list[str]:
        created = self.ensure_bucket()
        return [f"bucket gs://{self.bucket} {'created in ' + self.location if created else 'exists'}"]

    def stat(self, key: str) -> LakeObject | None:
        from google.api_core.exceptions import NotFound

        blob = self._blob(key)
        try:
            blob.reload()
        except NotFound:
            return None
        meta = blob.metadata or {}
        if not meta.get("sha256") or str(blob.size) != meta.get("size"):
            return None  # not written by us, or changed behind our back: treat as absent
        return LakeObject(key, self.uri(key), blob.size, meta["sha256"])

    def _store(self, local_file: Path, key: str, sha256: str, size: int) -> None:
        from google.api_core.exceptions import NotFound

        blob = self._blob(key)
        blob.metadata = {"sha256": sha256, "size": str(size)}
        resumable = size > self.resumable_threshold_mib * _MIB
        if resumable:
            blob.chunk_size = self.chunk_mib * _MIB
        # The object appears only once the upload is complete; crc32c is checked end to end.
        # (The client picks a single-request upload whenever it is told a size of 8 MiB or
        # less, so a resumable upload is asked for by not telling it the size.)
        for attempt in (1, 2):
            try:
                with open(local_file, "rb") as handle:
                    blob.upload_from_file(handle, size=None if resumable else size,
                                          content_type="application/gzip", checksum="crc32c")
                break
            except NotFound:  # no bucket yet (the setup job makes it; so does the first upload)
                if attempt == 2 or not self.ensure_bucket():
                    raise
        get_dagster_logger().debug(f"uploaded {local_file} to {self.uri(key)} ({size:,} bytes)")

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """The object downloaded to a temporary file, removed when the block ends.

        A download cut part-way (the client's own retries resume within one attempt) leaves its
        bytes in ``<tmp>/taxi-lake-partial/``, named by the object's generation, and the next
        attempt (a step retry, a re-run) asks only for the rest with a ranged read. A partial of
        another generation (the object was replaced) is discarded; the sha256 covers the whole
        file, so bytes that do not add up are discarded too, and the next attempt starts over."""
        from google.api_core.exceptions import NotFound

        blob = self._blob(key)
        try:
            blob.reload()
        except NotFound:
            raise FileNotFoundError(f"{self.uri(key)}: no such object in the lake") from None
        expected = (blob.metadata or {}).get("sha256")
        partial = self._partial_path(key, blob.generation)
        folder = Path(tempfile.mkdtemp(prefix="taxi-lake-", dir=self.tmp_dir or None))
        try:
            path = folder / Path(key).name
            with _locked(partial.with_name(partial.name + ".lock")):
                self._download_rest(blob, partial)
                if expected and sha256_of(partial) != expected:
                    partial.unlink()
                    raise LakeChecksumError(f"{self.uri(key)}: downloaded bytes do not match the stored sha256")
                partial.rename(path)
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def publish_data_docs(self, site: Path, pages: list[str]) -> dict[str, str]:
        """Copy the Data Docs ``pages`` and the site's index into ``gs://<bucket>/<prefix>data_docs/``
        (its ``static/`` styles and scripts too, the first time), so a check's link opens from
        anywhere the bucket is readable; GX 1.x keeps its site on a local disk only."""
        client = self.client()
        bucket = client.bucket(self.bucket)
        complete = bucket.blob(f"{self.prefix}{DATA_DOCS}static/.complete")
        files = [*pages, "index.html"]
        static_missing = not complete.exists()
        if static_missing:
            files += [p.relative_to(site).as_posix() for p in sorted((site / "static").rglob("*")) if p.is_file()]
        published = {}
        for page in files:
            path = site / page
            if not path.is_file():
                continue
            key = f"{self.prefix}{DATA_DOCS}{page}"
            bucket.blob(key).upload_from_filename(
                str(path), content_type=mimetypes.guess_type(page)[0] or "application/octet-stream")
            published[page] = _browser_url(self.bucket, key)
        if static_missing:
            complete.upload_from_string(b"")
        return published

    def _partial_path(self, key: str, generation: int | None) -> Path:
        folder = Path(self.tmp_dir or tempfile.gettempdir()) / "taxi-lake-partial"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{self.bucket}__{(self.prefix + key).replace('/', '__')}"
        for stale in folder.glob(f"{stem}.*.part"):  # earlier generations of the object
            if stale.name != f"{stem}.{generation}.part":
                stale.unlink(missing_ok=True)
        return folder / f"{stem}.{generation}.part"

    def _download_rest(self, blob, partial: Path) -> None:
        """Append to ``partial`` the bytes of ``blob`` it does not hold yet."""
        from google.resumable_media.common import DataCorruption

        have = partial.stat().st_size if partial.exists() else 0
        if have > blob.size:
            partial.unlink()
            have = 0
        if have == blob.size:
            return
        if have:
            get_dagster_logger().info(f"{self.uri(blob.name[len(self.prefix):])}: resuming the download at "
                                      f"{have:,} of {blob.size:,} bytes")
        try:
            with open(partial, "ab") as out:
                # crc32c covers whole objects only; a resumed download is checked by the sha256.
                blob.download_to_file(out, start=have or None, if_generation_match=blob.generation,
                                      checksum=None if have else "crc32c")
        except DataCorruption:
            partial.unlink(missing_ok=True)  # bytes that fail the crc32c are not worth resuming
            raise


DATA_DOCS = "data_docs/"  # the Data Docs site's folder in the bucket


def _browser_url(bucket: str, key: str) -> str:
    """An object's URL for a browser: Google's authenticated one (the reader's own Google login
    decides), or the emulator's when STORAGE_EMULATOR_HOST is set."""
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    base = emulator.rstrip("/") if emulator else "https://storage.cloud.google.com"
    return f"{base}/{bucket}/{quote(key)}"


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """An exclusive lock between processes downloading the same object (they share the partial)."""
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
