"""The GCS lake against a local GCS emulator: objects carry the platform's sha256, an
unchanged file is not uploaded again, big files go up resumably in chunks, local copies are
temporary, a download cut part-way resumes where it stopped, the checks' Data Docs pages are
published into the bucket, and a whole month runs raw -> lake -> bronze -> silver with TAXI_LAKE=gcs."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from google.cloud.storage.blob import Blob

from taxi_platform.assets import ingest_assets
from taxi_platform.files import sha256_of
from taxi_platform.lake.gcs import GCSLakeResource, LakeChecksumError
from taxi_platform.settings import Settings
from tests.support.backends import REAL_YELLOW
from tests.support.gcs import bucket_name
from tests.support.runs import failure_messages, run_months

KEY = "yellow/yellow_tripdata_2019-01.csv.gz"


@pytest.fixture
def lake(gcs_env) -> GCSLakeResource:
    lake = GCSLakeResource(project="taxi-test", bucket=bucket_name())
    assert lake.ensure_bucket() and not lake.ensure_bucket()  # created once, then found
    return lake


@pytest.fixture
def upload_spy(monkeypatch) -> list[tuple[str, int | None]]:
    """Records each upload the client makes: ('resumable' | 'multipart', chunk size)."""
    calls = []
    for method, kind in (("_do_resumable_upload", "resumable"), ("_do_multipart_upload", "multipart")):
        original = getattr(Blob, method)

        def spy(self, *args, _original=original, _kind=kind, **kwargs):
            calls.append((_kind, self.chunk_size))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Blob, method, spy)
    return calls


def test_a_file_is_stored_with_its_sha256_and_an_unchanged_file_is_not_uploaded_again(
        lake, tlc_dir, upload_spy):
    path = tlc_dir / REAL_YELLOW
    first = lake.put(path, KEY)
    assert first.uri == f"gs://{lake.bucket}/{KEY}" and not first.unchanged
    assert (first.size, first.sha256) == (path.stat().st_size, sha256_of(path))
    assert lake.stat(KEY) == first
    again = lake.put(path, KEY, sha256=first.sha256)
    assert again.unchanged and len(upload_spy) == 1 and upload_spy[0][0] == "multipart"


def test_a_changed_file_replaces_the_object(lake, tmp_path):
    path = tmp_path / "f.csv.gz"
    path.write_bytes(b"one")
    lake.put(path, KEY)
    path.write_bytes(b"two!")
    stored = lake.put(path, KEY)
    assert not stored.unchanged and lake.stat(KEY).sha256 == sha256_of(path) and stored.size == 4


def test_a_big_file_goes_up_resumably_in_chunks_and_comes_back_byte_for_byte(gcs_env, tmp_path, upload_spy):
    lake = GCSLakeResource(bucket=bucket_name(), resumable_threshold_mib=1, chunk_mib=1)
    big = tmp_path / "big.csv.gz"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # four chunks
    stored = lake.put(big, KEY)  # the first upload also creates the missing bucket
    # tried once, found no bucket, created it, uploaded: resumable, in 1 MiB chunks both times
    assert upload_spy == [("resumable", 1024 * 1024)] * 2
    with lake.local_copy(KEY) as copy:
        assert copy.read_bytes() == big.read_bytes() and sha256_of(copy) == stored.sha256
    assert not copy.exists() and not copy.parent.exists()


def test_the_local_copy_is_removed_even_when_the_block_fails(lake, tlc_dir):
    lake.put(tlc_dir / REAL_YELLOW, KEY)
    with pytest.raises(RuntimeError, match="boom"), lake.local_copy(KEY) as copy:
        assert copy.is_file()
        raise RuntimeError("boom")
    assert not copy.parent.exists()


def test_an_object_changed_behind_our_back_is_absent_or_refused(lake, tlc_dir, tmp_path):
    assert lake.stat(KEY) is None
    lake.put(tlc_dir / REAL_YELLOW, KEY)
    blob = lake.client().bucket(lake.bucket).blob(KEY)
    blob.upload_from_string(b"other bytes")  # another writer, without our metadata
    assert lake.stat(KEY) is None
    blob.metadata = {"sha256": "0" * 64, "size": str(len(b"other bytes"))}
    blob.upload_from_string(b"other bytes")  # metadata that lies about the bytes
    with pytest.raises(LakeChecksumError), lake.local_copy(KEY):
        pass


@pytest.fixture
def cut_once(monkeypatch) -> list[int | None]:
    """The first download stops with a dropped connection after 1 MiB (what it wrote stays on
    disk); later ones run. Returns the ``start`` byte each download asked for."""
    starts: list[int | None] = []
    original = Blob.download_to_file

    def download(self, file_obj, *args, start=None, **kwargs):
        starts.append(start)
        if len(starts) == 1:
            original(self, file_obj, start=start, end=(start or 0) + MIB - 1, checksum=None)
            raise ConnectionResetError("connection reset by peer (planted)")
        return original(self, file_obj, *args, start=start, **kwargs)

    monkeypatch.setattr(Blob, "download_to_file", download)
    return starts


MIB = 1024 * 1024


def test_a_download_cut_part_way_resumes_from_the_bytes_already_on_disk(gcs_env, tmp_path, cut_once):
    lake = GCSLakeResource(bucket=bucket_name(), tmp_dir=str(tmp_path / "tmp"))
    big = tmp_path / "big.csv.gz"
    big.write_bytes(os.urandom(3 * MIB + 5))
    stored = lake.put(big, KEY)
    with pytest.raises(ConnectionResetError), lake.local_copy(KEY):
        pass
    partial, = (tmp_path / "tmp" / "taxi-lake-partial").glob("*.part")
    assert partial.stat().st_size == MIB
    with lake.local_copy(KEY) as copy:  # the step's next attempt
        assert sha256_of(copy) == stored.sha256 and copy.read_bytes() == big.read_bytes()
    assert cut_once == [None, MIB]  # the second download asked only for the rest
    assert not partial.exists()


def test_a_partial_download_of_a_replaced_object_is_not_resumed(gcs_env, tmp_path, cut_once):
    lake = GCSLakeResource(bucket=bucket_name(), tmp_dir=str(tmp_path / "tmp"))
    first, second = tmp_path / "first.csv.gz", tmp_path / "second.csv.gz"
    first.write_bytes(os.urandom(2 * MIB))
    second.write_bytes(os.urandom(2 * MIB))
    lake.put(first, KEY)
    with pytest.raises(ConnectionResetError), lake.local_copy(KEY):
        pass
    lake.put(second, KEY)  # a new generation of the object
    with lake.local_copy(KEY) as copy:
        assert copy.read_bytes() == second.read_bytes()
    assert cut_once == [None, None]
    assert not list((tmp_path / "tmp" / "taxi-lake-partial").glob("*.part"))


@pytest.mark.slow
def test_a_month_runs_raw_to_silver_with_the_lake_in_gcs(platform_env, gcs_env, monkeypatch):
    bucket = bucket_name()
    for key, value in {"TAXI_LAKE": "gcs", "GCP_PROJECT_ID": "taxi-test", "GCP_BUCKET_NAME": bucket}.items():
        monkeypatch.setenv(key, value)
    yellow = [a for a in ingest_assets if "yellow" in a.key.to_user_string()]
    with DagsterInstance.get() as instance:
        result = run_months(instance, "2019-01", yellow)
        assert result.success, failure_messages(result)
        (gate,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "gx_bronze_suite"]
        lake_meta = instance.get_latest_materialization_event(
            AssetKey(["lake", "yellow_tripdata"])).asset_materialization.metadata
        again = run_months(instance, "2019-01", yellow)
        assert again.success, failure_messages(again)
        lake_again = instance.get_latest_materialization_event(
            AssetKey(["lake", "yellow_tripdata"])).asset_materialization.metadata
    assert lake_meta["uri"].value == f"gs://{bucket}/{KEY}" and not lake_meta["unchanged"].value
    assert lake_again["unchanged"].value  # the second run found the same bytes there
    # the bronze gate's Data Docs page is in the bucket, and a browser can open its link
    docs = gate.metadata["data_docs"].value
    assert docs.startswith(f"{gcs_env.url}/{bucket}/data_docs/validations/bronze_yellow_tripdata/"), docs
    with urllib.request.urlopen(docs, timeout=30) as page:
        assert b"Expectation Validation Result" in page.read()
    assert gate.metadata["data_docs_index"].value == f"{gcs_env.url}/{bucket}/data_docs/index.html"
    from taxi_platform.resources import build_warehouse

    warehouse = build_warehouse(Settings.from_env())
    assert warehouse.query("SELECT count(*) FROM silver.yellow_tripdata")[0][0] == 10_000
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("taxi-lake-*/*.csv.gz"))
