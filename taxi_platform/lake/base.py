"""The data lake: where each month's file is kept as an object.

A lake implementation puts a local file under a key (``<colour>/<file>``), says what is
stored there, and hands a local path back for loading. ``LocalLakeResource`` is a folder;
a GCS implementation fits the same three methods.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from taxi_platform.files import atomic_path, sha256_of
from taxi_platform.settings import FromEnvironment, setting
from taxi_platform.watchdog import ClaimsItsRun


@dataclass(frozen=True)
class LakeObject:
    key: str
    uri: str
    size: int
    sha256: str
    unchanged: bool = False  # True when the same bytes were already stored


class LakeResource(FromEnvironment, ClaimsItsRun, ConfigurableResource):
    """Base class of the lakes (the assets ask for this type)."""

    def uri(self, key: str) -> str:
        raise NotImplementedError

    def stat(self, key: str) -> LakeObject | None:
        raise NotImplementedError

    def put(self, local_file: Path, key: str, sha256: str | None = None) -> LakeObject:
        """Store ``local_file`` under ``key``; skip the write when the same bytes are there."""
        sha256 = sha256 or sha256_of(local_file)
        size = os.path.getsize(local_file)
        existing = self.stat(key)
        if existing and existing.sha256 == sha256 and existing.size == size:
            return LakeObject(key, existing.uri, size, sha256, unchanged=True)
        self._store(local_file, key, sha256, size)
        return LakeObject(key, self.uri(key), size, sha256)

    def _store(self, local_file: Path, key: str, sha256: str, size: int) -> None:
        """Write ``local_file`` under ``key`` whole or not at all, with its sha256 and size."""
        raise NotImplementedError

    def local_copy(self, key: str):
        """Context manager: a local path to the object's bytes while the block runs."""
        raise NotImplementedError

    def publish_data_docs(self, site: Path, pages: list[str]) -> dict[str, str]:
        """Make the Data Docs ``pages`` (paths in the local ``site``) readable in a browser; returns
        {page: URL} for the pages it published. The local lake publishes nothing: `taxi-platform
        docs` serves the local site (TAXI_DATA_DOCS_URL)."""
        return {}

    def set_up(self) -> list[str]:
        """Create what the lake needs (folder, bucket) if missing; returns what was done."""
        raise NotImplementedError


class LocalLakeResource(LakeResource):
    """A folder standing in for a bucket: ``<root>/<colour>/<colour>_tripdata_YYYY-MM.csv.gz``.
    Beside each object, ``<object>.json`` records its sha256 and size, like object metadata."""

    ENV_FIELDS: ClassVar[dict[str, str]] = {"root": "TAXI_LAKE_DIR"}

    root: str = Field(default_factory=setting("lake_dir"), description="TAXI_LAKE_DIR")

    def _path(self, key: str) -> Path:
        return Path(self.root) / key

    def uri(self, key: str) -> str:
        return self._path(key).resolve().as_uri()

    def set_up(self) -> list[str]:
        root = Path(self.root).absolute()
        existed = root.is_dir()
        root.mkdir(parents=True, exist_ok=True)
        return [f"lake folder {root} {'exists' if existed else 'created'}"]

    def stat(self, key: str) -> LakeObject | None:
        path, meta = self._path(key), self._path(key + ".json")
        if not path.is_file() or not meta.is_file():
            return None
        info = json.loads(meta.read_text())
        if info.get("size") != path.stat().st_size:
            return None  # the object changed behind our back: treat as absent
        return LakeObject(key, self.uri(key), info["size"], info["sha256"])

    def _store(self, local_file: Path, key: str, sha256: str, size: int) -> None:
        path = self._path(key)
        with atomic_path(path) as tmp:
            tmp.unlink()
            try:  # a hard link costs nothing when raw and lake share a disk
                os.link(local_file, tmp)
            except OSError:
                import shutil

                shutil.copyfile(local_file, tmp)
        with atomic_path(self._path(key + ".json")) as tmp:
            tmp.write_text(json.dumps({"sha256": sha256, "size": size}))

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """A local path to the object's bytes for as long as the block runs."""
        yield self._path(key)
