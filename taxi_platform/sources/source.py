"""The source of the monthly files (``TAXI_SOURCE``): the DataTalksClub CSV mirror (``mirror``,
``<TAXI_SOURCE_URL>/<colour>/<colour>_tripdata_YYYY-MM.csv.gz``) or the TLC's own Parquet files
(``tlc``, ``<TAXI_TLC_URL>/<colour>_tripdata_YYYY-MM.parquet``). A base may be an ``http(s)://``
URL, a ``file://`` URL or a plain path. A file is kept as published, judged by its content.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import requests
from dagster import ConfigurableResource, get_dagster_logger
from pydantic import Field

from taxi_platform import files
from taxi_platform.errors import BadInputError, NotPublishedError
from taxi_platform.files import CHUNK, atomic_path
from taxi_platform.partitions import TLC
from taxi_platform.schemas import CSV_GZ, PARQUET, SCHEMAS
from taxi_platform.settings import DEFAULT_TLC_URL, FromEnvironment, setting
from taxi_platform.sources import http as http_download
from taxi_platform.sources.http import DownloadGaveUp, TransientSourceError  # noqa: F401  (re-exported)
from taxi_platform.sources.landing import GCS_SCHEME, fetch_landed, landed_exists
from taxi_platform.watchdog import ClaimsItsRun


@dataclass(frozen=True)
class DownloadedFile:
    path: Path
    url: str
    size: int
    sha256: str
    attempts: int


@functools.cache
def _tlc_published_rows() -> dict[tuple[str, str], int]:
    lines = (Path(__file__).with_name("tlc_published_rows.csv").read_text().splitlines())
    rows = csv.DictReader(line for line in lines if not line.startswith("#"))
    return {(r["colour"], r["month"]): int(r["rows"]) for r in rows}


class TaxiSourceResource(FromEnvironment, ClaimsItsRun, ConfigurableResource):
    """Downloads a month's published file, streaming, to a local folder."""

    ENV_FIELDS: ClassVar[dict[str, str]] = {
        "base_url": "TAXI_SOURCE_URL", "tlc_url": "TAXI_TLC_URL", "gcp_project_id": "GCP_PROJECT_ID"}

    source: str = Field(default_factory=setting("source"),
                        description="TAXI_SOURCE: mirror (the CSV mirror) or tlc (the TLC's Parquet files)")
    base_url: str = Field(default_factory=setting("source_url"), description="TAXI_SOURCE_URL (the mirror)")
    tlc_url: str = Field(default_factory=setting("tlc_url"), description="TAXI_TLC_URL (the TLC's files)")
    download_dir: str = Field(default_factory=setting("raw_dir"),
                              description="where raw files are kept: <TAXI_DATA_DIR>/raw")
    max_attempts: int = Field(default=5, description="tries on connection errors and 5xx")
    backoff_seconds: float = Field(default=1.0, description="first retry delay; doubles, with jitter")
    timeout_seconds: float = Field(default=60.0, description="connect/read timeout per request")
    deadline_seconds: float = Field(
        default_factory=setting("download_deadline_seconds", float),
        description="TAXI_DOWNLOAD_DEADLINE_SECONDS: the whole download, retries included, must end within it")
    gcp_project_id: str = Field(default_factory=setting("gcp_project_id"),
                                description="GCP_PROJECT_ID, for files landed in GCS")

    @property
    def format(self) -> str:
        """The suffix of the files this source publishes: ``.csv.gz`` or ``.parquet``."""
        return PARQUET if self.source == TLC else CSV_GZ

    def filename(self, colour: str, month: str) -> str:
        """The file the source publishes for the month, e.g. ``yellow_tripdata_2024-01.parquet``."""
        return SCHEMAS[colour].filename(month, self.format)

    def published_rows(self, colour: str, month: str) -> int | None:
        """How many rows the publisher says the month's file has, when known: the TLC's own files
        (at its own URL) up to 2024-05, from the TLC's published metadata (tlc_published_rows.csv).
        A copy elsewhere (a test server, the sample source) may hold other files."""
        if self.source != TLC or self.tlc_url.rstrip("/") != DEFAULT_TLC_URL:
            return None
        return _tlc_published_rows().get((colour, month))

    def url_for(self, colour: str, filename: str) -> str:
        """The mirror's ``<base>/<colour>/<file>``, or the TLC's ``<base>/<file>``."""
        if filename.endswith(PARQUET):
            return f"{self.tlc_url.rstrip('/')}/{filename}"
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
            got = self._download_http(url, target, filename, partition)
        else:
            path = Path(urllib.parse.urlparse(url).path if scheme == "file" else url)
            got = self._copy_local(path, url, target, filename, partition)
        return self._data_file(got, filename, partition)

    def copy_landed(self, uri: str, colour: str, filename: str, partition: str) -> DownloadedFile:
        """Take a file dropped in the landing area (a local path or a ``gs://`` object) as the
        month's file, kept byte for byte, gzipped or not (readers detect gzip by its magic bytes)."""
        if not landed_exists(uri, self.gcp_project_id):
            raise BadInputError(f"{filename} (partition {partition}): the landed file {uri} is gone; "
                                "drop it into the landing area again", file=filename, partition=partition)
        target = self.local_path(colour, filename)
        size, sha256 = fetch_landed(uri, target, self.gcp_project_id)
        url = uri if uri.startswith(GCS_SCHEME) else Path(uri).absolute().as_uri()
        return self._data_file(DownloadedFile(target, url, size, sha256, 1), filename, partition)

    @staticmethod
    def _data_file(got: DownloadedFile, filename: str, partition: str) -> DownloadedFile:
        """The file as the lake keeps it, judged by its content, not its name: a gzipped CSV as
        it is; a plain CSV (a landed ``.csv``, a server that sent it uncompressed) gzipped under
        its published ``.csv.gz`` name; anything else (an HTML error page served with 200, an
        empty file) refused, and not kept."""
        kind, why = files.sniff(got.path)
        if kind is not None and (kind == files.PARQUET) != filename.endswith(PARQUET):
            why = f"it is {'a Parquet' if kind == files.PARQUET else 'a CSV'} file, named {filename}"
            kind = None
        if kind is None:
            got.path.unlink(missing_ok=True)
            raise BadInputError(
                f"{filename} (partition {partition}) from {got.url} is not a data file: {why}. "
                "Check the source (TAXI_SOURCE, TAXI_SOURCE_URL, TAXI_TLC_URL) or the landed file.",
                file=filename, partition=partition)
        if kind == files.CSV and filename.endswith(".gz"):
            files.gzip_in_place(got.path)
            return DownloadedFile(got.path, got.url, got.path.stat().st_size, files.sha256_of(got.path),
                                  got.attempts)
        return got

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

    def _download_http(self, url: str, target: Path, filename: str, partition: str) -> DownloadedFile:
        """Streamed, resumed, bounded in time (taxi_platform/resources/http_download.py)."""
        try:
            got = http_download.download(
                url, target, deadline_seconds=self.deadline_seconds, timeout_seconds=self.timeout_seconds,
                max_attempts=self.max_attempts, backoff_seconds=self.backoff_seconds,
                log=get_dagster_logger())
        except http_download.NotFound:
            raise NotPublishedError(f"{filename} is not published at {url}",
                                    file=filename, partition=partition) from None
        except http_download.Refused as exc:
            raise BadInputError(f"{filename} (partition {partition}): {exc} from {url}; check TAXI_SOURCE_URL",
                                file=filename, partition=partition) from None
        except DownloadGaveUp as exc:
            raise DownloadGaveUp(f"{filename} (partition {partition}) from {url}: {exc}") from None
        return DownloadedFile(target, url, got.size, got.sha256, got.attempts)

    def is_published(self, colour: str, filename: str) -> bool:
        """A cheap probe (HEAD for HTTP) used by the publication sensor."""
        url = self.url_for(colour, filename)
        scheme = urllib.parse.urlparse(url).scheme
        if scheme in ("http", "https"):
            response = requests.head(url, allow_redirects=True, timeout=self.timeout_seconds)
            return response.status_code == 200
        return Path(urllib.parse.urlparse(url).path if scheme == "file" else url).is_file()
