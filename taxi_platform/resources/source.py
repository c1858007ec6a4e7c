"""The source of the monthly CSV files: an HTTP mirror, the official TLC site, or a local folder.

Files live at ``<base>/<colour>/<colour>_tripdata_YYYY-MM.csv.gz``. ``base`` may be an
``http(s)://`` URL, a ``file://`` URL or a plain path.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3
from dagster import ConfigurableResource, get_dagster_logger
from pydantic import Field

from taxi_platform.errors import BadInputError, NotPublishedError
from taxi_platform.files import CHUNK, atomic_path
from taxi_platform.landing import GCS_SCHEME, fetch_landed, landed_exists
from taxi_platform.settings import DEFAULT_SOURCE_URL


class TransientSourceError(Exception):
    """A connection error or a 5xx answer: worth retrying."""


@dataclass(frozen=True)
class DownloadedFile:
    path: Path
    url: str
    size: int
    sha256: str
    attempts: int


class TaxiSourceResource(ConfigurableResource):
    """Downloads a month's published file, streaming, to a local folder."""

    base_url: str = Field(default=DEFAULT_SOURCE_URL, description="TAXI_SOURCE_URL")
    download_dir: str = Field(default="data/raw", description="where raw files are kept")
    max_attempts: int = Field(default=5, description="tries on connection errors and 5xx")
    backoff_seconds: float = Field(default=1.0, description="first retry delay; doubles, with jitter")
    timeout_seconds: float = Field(default=60.0, description="connect/read timeout per request")
    gcp_project_id: str = Field(default="", description="GCP_PROJECT_ID, for files landed in GCS")

    def url_for(self, colour: str, filename: str) -> str:
        return f"{self.base_url.rstrip('/')}/{colour}/{filename}"

    def local_path(self, colour: str, filename: str) -> Path:
        return Path(self.download_dir) / colour / filename

    def download(self, colour: str, filename: str, partition: str) -> DownloadedFile:
        """Fetch ``<base>/<colour>/<filename>`` into ``download_dir``; the file appears only
        when complete. 404 fails at once; connection errors and 5xx are retried with backoff."""
        url = self.url_for(colour, filename)
        target = self.local_path(colour, filename)
        scheme = urllib.parse.urlparse(url).scheme
        if scheme in ("http", "https"):
            return self._download_http(url, target, filename, partition)
        path = Path(urllib.parse.urlparse(url).path if scheme == "file" else url)
        return self._copy_local(path, url, target, filename, partition)

    def copy_landed(self, uri: str, colour: str, filename: str, partition: str) -> DownloadedFile:
        """Take a file dropped in the landing area (a local path or a ``gs://`` object) as the
        month's file, kept byte for byte, gzipped or not (readers detect gzip by its magic bytes)."""
        if not landed_exists(uri, self.gcp_project_id):
            raise BadInputError(f"{filename} (partition {partition}): the landed file {uri} is gone; "
                                "drop it into the landing area again", file=filename, partition=partition)
        target = self.local_path(colour, filename)
        size, sha256 = fetch_landed(uri, target, self.gcp_project_id)
        url = uri if uri.startswith(GCS_SCHEME) else Path(uri).absolute().as_uri()
        return DownloadedFile(target, url, size, sha256, 1)

    def _copy_local(self, path: Path, url: str, target: Path, filename: str, partition: str):
        if not path.is_file():
            raise NotPublishedError(f"{filename} is not published at {url}",
                                    file=filename, partition=partition)
        digest, size = hashlib.sha256(), 0
        with atomic_path(target) as tmp, open(path, "rb") as src, open(tmp, "wb") as out:
            for block in iter(lambda: src.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
                size += len(block)
        return DownloadedFile(target, url, size, digest.hexdigest(), 1)

    def _download_http(self, url: str, target: Path, filename: str, partition: str):
        log = get_dagster_logger()
        delay = self.backoff_seconds
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._try_http(url, target, filename, partition, attempt)
            except TransientSourceError as exc:
                if attempt == self.max_attempts:
                    raise TransientSourceError(
                        f"{filename} (partition {partition}): giving up after {attempt} attempts "
                        f"on {url}: {exc}") from exc
                wait = delay * (0.5 + random.random())  # jitter spreads out retrying workers
                log.warning(f"{filename}: attempt {attempt} failed ({exc}); retrying in {wait:.1f}s")
                time.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")

    def _try_http(self, url, target, filename, partition, attempt) -> DownloadedFile:
        try:
            with requests.get(url, stream=True, timeout=self.timeout_seconds) as response:
                if response.status_code == 404:
                    raise NotPublishedError(f"{filename} is not published at {url}",
                                            file=filename, partition=partition)
                if response.status_code >= 500:
                    raise TransientSourceError(f"HTTP {response.status_code} from {url}")
                if response.status_code >= 400:
                    raise BadInputError(
                        f"{filename} (partition {partition}): HTTP {response.status_code} "
                        f"from {url}; check TAXI_SOURCE_URL", file=filename, partition=partition)
                expected = response.headers.get("Content-Length")
                digest, size = hashlib.sha256(), 0
                with atomic_path(target) as tmp:
                    with open(tmp, "wb") as out:
                        # raw stream: keep the gzip bytes as published, never decoded in memory
                        for block in response.raw.stream(CHUNK, decode_content=False):
                            digest.update(block)
                            out.write(block)
                            size += len(block)
                    if expected is not None and int(expected) != size:
                        raise TransientSourceError(
                            f"connection closed after {size} of {expected} bytes")
                return DownloadedFile(target, url, size, digest.hexdigest(), attempt)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.ProtocolError) as exc:  # refused, timed out, or cut mid-body
            raise TransientSourceError(str(exc)) from exc

    def is_published(self, colour: str, filename: str) -> bool:
        """A cheap probe (HEAD for HTTP) used by the publication sensor."""
        url = self.url_for(colour, filename)
        scheme = urllib.parse.urlparse(url).scheme
        if scheme in ("http", "https"):
            response = requests.head(url, allow_redirects=True, timeout=self.timeout_seconds)
            return response.status_code == 200
        return Path(urllib.parse.urlparse(url).path if scheme == "file" else url).is_file()


def copy_file(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
