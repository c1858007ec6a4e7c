"""The cloud lake: a Google Cloud Storage bucket (``TAXI_LAKE=gcs``).

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
ends, success or not.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dagster import get_dagster_logger
from dagster_gcp import GCSResource
from google.api_core.exceptions import Conflict, NotFound
from pydantic import Field

from taxi_platform.files import sha256_of
from taxi_platform.lake import LakeObject, LakeResource
from taxi_platform.settings import setting

_MIB = 1024 * 1024


class LakeChecksumError(RuntimeError):
    """The bytes read back from the lake are not the bytes stored (transient: retried)."""


class GCSLakeResource(LakeResource):
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
        return GCSResource(project=self.project or None).get_client()

    def _blob(self, key: str, client=None):
        return (client or self.client()).bucket(self.bucket).blob(self.prefix + key)

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{self.prefix}{key}"

    def ensure_bucket(self) -> bool:
        """Create the bucket in ``location`` if it is missing; True when created."""
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
        """The object downloaded to a temporary file, removed when the block ends."""
        expected = self.stat(key)
        folder = Path(tempfile.mkdtemp(prefix="taxi-lake-", dir=self.tmp_dir or None))
        try:
            path = folder / Path(key).name
            self._blob(key).download_to_filename(str(path), checksum="crc32c")
            if expected and sha256_of(path) != expected.sha256:
                raise LakeChecksumError(f"{self.uri(key)}: downloaded bytes do not match the stored sha256")
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)
