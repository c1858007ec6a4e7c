"""Every setting the platform reads from the environment, with its default, in one place.

Switch backends and locations with these variables, never with code edits:

| variable | default | what |
|---|---|---|
| TAXI_DATA_DIR | ./data | root of local data: raw downloads, the local lake, the DuckDB file |
| TAXI_SOURCE | mirror | `mirror`: the DataTalksClub CSV mirror (2019-01 … 2021-07); `tlc`: the TLC's own Parquet files (yellow from 2011-01, green from 2013-08, to the last complete month) |
| TAXI_SOURCE_URL | DataTalksClub release mirror | TAXI_SOURCE=mirror: where `<colour>/<colour>_tripdata_YYYY-MM.csv.gz` is published (http, file:// or a path) |
| TAXI_TLC_URL | https://d37ci6vzurychx.cloudfront.net/trip-data | TAXI_SOURCE=tlc: where `<colour>_tripdata_YYYY-MM.parquet` is published (http, file:// or a path) |
| TAXI_LAKE | local | lake backend |
| TAXI_LAKE_DIR | <TAXI_DATA_DIR>/lake | the local lake folder |
| TAXI_WAREHOUSE | duckdb | warehouse backend |
| TAXI_DUCKDB_PATH | <TAXI_DATA_DIR>/warehouse.duckdb | the DuckDB file |
| TAXI_DUCKDB_MEMORY_LIMIT | 4GB | DuckDB's memory_limit |
| TAXI_MAX_QUARANTINE_FRACTION | 0.01 | above this share of untypable rows a month fails instead of loading |
| TAXI_LANDING_DIR | <TAXI_DATA_DIR>/landing | where the landing sensor watches for `<colour>_tripdata_YYYY-MM.csv[.gz]`: a folder, or a GCS prefix `gs://bucket/prefix/` |
| TAXI_PG_DSN | (the PG* variables) | TAXI_WAREHOUSE=postgres: libpq URL or key=value DSN; unset, libpq reads PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE... (read when connecting, so it never shows in run config) |
| GCP_PROJECT_ID | (from the credentials) | TAXI_LAKE=gcs / TAXI_WAREHOUSE=bigquery: the Google Cloud project (Kestra's key names) |
| GCP_LOCATION | US | where the bucket and the dataset are created |
| GCP_BUCKET_NAME | - | the lake bucket (required for TAXI_LAKE=gcs) |
| GCP_DATASET | taxi | BigQuery dataset prefix: `<GCP_DATASET>_bronze`, `<GCP_DATASET>_silver` |
| TAXI_BIGQUERY_API_ENDPOINT | (Google's) | a BigQuery emulator's URL (anonymous credentials then) |
| TAXI_BIGQUERY_BRONZE_VIA | load | `load`: a load job copies the GCS object into a staging table; `external`: an external table over the object (the old 08_gcp_taxi flow) |
| GOOGLE_APPLICATION_CREDENTIALS | - | service-account key file (read by the Google client libraries themselves) |
| TAXI_DOWNLOAD_DEADLINE_SECONDS | 3600 | a month's download, retries and waits included, must end within it |

Automation settings (schedules, sensors, alerts) are read by taxi_platform/schedules.py and
taxi_platform/sensors.py; the README's "Operations" section lists them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from taxi_platform.partitions import source_from_env

DEFAULT_SOURCE_URL = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download"
DEFAULT_TLC_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    source_url: str
    lake: str
    lake_dir: Path
    warehouse: str
    duckdb_path: Path
    duckdb_memory_limit: str
    max_quarantine_fraction: float
    landing: str  # a folder, or gs://bucket/prefix/
    gcp_project_id: str = ""
    gcp_location: str = "US"
    gcp_bucket_name: str = ""
    gcp_dataset: str = "taxi"
    bigquery_api_endpoint: str = ""
    bigquery_bronze_via: str = "load"
    download_deadline_seconds: float = 3600.0
    source: str = "mirror"
    tlc_url: str = DEFAULT_TLC_URL

    @property
    def bigquery_bucket(self) -> str:
        """The bucket BigQuery's load jobs read: the lake's, when the lake is GCS."""
        return self.gcp_bucket_name if self.lake == "gcs" else ""

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def landing_dir(self) -> Path | None:
        """The landing folder; None when the landing area is a GCS prefix."""
        return None if self.landing.startswith("gs://") else Path(self.landing)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("TAXI_DATA_DIR") or "data").absolute()
        return cls(
            data_dir=data_dir,
            source_url=env.get("TAXI_SOURCE_URL") or DEFAULT_SOURCE_URL,
            lake=(env.get("TAXI_LAKE") or "local").lower(),
            lake_dir=Path(env.get("TAXI_LAKE_DIR") or data_dir / "lake").absolute(),
            warehouse=(env.get("TAXI_WAREHOUSE") or "duckdb").lower(),
            duckdb_path=Path(env.get("TAXI_DUCKDB_PATH") or data_dir / "warehouse.duckdb").absolute(),
            duckdb_memory_limit=env.get("TAXI_DUCKDB_MEMORY_LIMIT") or "4GB",
            max_quarantine_fraction=float(env.get("TAXI_MAX_QUARANTINE_FRACTION") or 0.01),
            landing=_landing_location(env.get("TAXI_LANDING_DIR") or str(data_dir / "landing")),
            gcp_project_id=env.get("GCP_PROJECT_ID") or "",
            gcp_location=env.get("GCP_LOCATION") or "US",
            gcp_bucket_name=env.get("GCP_BUCKET_NAME") or "",
            gcp_dataset=env.get("GCP_DATASET") or "taxi",
            bigquery_api_endpoint=env.get("TAXI_BIGQUERY_API_ENDPOINT") or "",
            bigquery_bronze_via=(env.get("TAXI_BIGQUERY_BRONZE_VIA") or "load").lower(),
            download_deadline_seconds=float(env.get("TAXI_DOWNLOAD_DEADLINE_SECONDS") or 3600),
            source=source_from_env(env),
            tlc_url=env.get("TAXI_TLC_URL") or DEFAULT_TLC_URL,
        )


def setting(name: str, transform=str):
    """A pydantic ``default_factory`` reading one field of :class:`Settings` from the
    environment when a resource is made (in the process that runs the step). Run config that sets
    another field of the resource keeps this one: an explicit value given when the resource is
    defined would be replaced, with every other field, by any run config for that resource."""
    return lambda: transform(getattr(Settings.from_env(), name))


def _landing_location(value: str) -> str:
    return value if value.startswith("gs://") else str(Path(value).absolute())
