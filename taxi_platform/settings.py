"""Every setting the platform reads from the environment, with its default, in one place: the
catalogue :data:`VARIABLES` below (what ``docs/settings.md`` is generated from: ``make docs``; a
unit test keeps both, and every variable the code reads, in step) and :class:`Settings`, the
values of the core ones.

Switch sources, backends and locations with these variables, never with code edits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from taxi_platform.partitions import source_from_env

DEFAULT_SOURCE_URL = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download"
DEFAULT_TLC_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data"
DEFAULT_DATA_DOCS_URL = "http://127.0.0.1:3001"
DEFAULT_DUCKDB_MEMORY_LIMIT = "768MB"  # why this much: TAXI_DUCKDB_MEMORY_LIMIT below


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    what: str
    group: str


def _group(group: str, *rows: tuple[str, str, str]) -> list[Variable]:
    return [Variable(name, default, what, group) for name, default, what in rows]


VARIABLES: list[Variable] = [
    *_group(
        "Source and data",
        ("TAXI_SOURCE", "mirror", ("`mirror`: the DataTalksClub CSV mirror (2019-01 … 2021-07); `tlc`: the TLC's own "
                                   "Parquet files (yellow from 2009-01, green from 2013-08, to the last complete month)")),
        ("TAXI_SOURCE_URL", DEFAULT_SOURCE_URL, ("`TAXI_SOURCE=mirror`: where `<colour>/<colour>_tripdata_YYYY-MM.csv.gz` "
                                                 "is published (`http(s)://`, `file://` or a path)")),
        ("TAXI_TLC_URL", DEFAULT_TLC_URL, "`TAXI_SOURCE=tlc`: where `<colour>_tripdata_YYYY-MM.parquet` is published"),
        ("TAXI_DOWNLOAD_DEADLINE_SECONDS", "3600", "a month's download, retries and waits included, must end within it"),
        ("TAXI_DATA_DIR", "./data", "raw downloads, the local lake, the DuckDB file, GX results and Data Docs"),
        ("TAXI_MAX_QUARANTINE_FRACTION", "0.01", "above this share of untypable rows a month is refused, not loaded"),
        ("TAXI_FORCE_RELOAD", "(unset)", "`1`: reload months even when unchanged (as the run tag `taxi/reload=true`)"),
    ),
    *_group(
        "Warehouse",
        ("TAXI_WAREHOUSE", "duckdb", "`duckdb`, `postgres` or `bigquery`"),
        ("TAXI_DUCKDB_PATH", "<TAXI_DATA_DIR>/warehouse.duckdb", "the DuckDB file"),
        ("TAXI_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT, ("DuckDB's `memory_limit` (the platform's, dbt's and GX's connections): what it may "
                                                   "hold before spilling to disk. A run's process tree holds a Python process of "
                                                   "about 0.5 GB (Dagster, GX) beside it, and dbt's process beside that: with 768MB "
                                                   "a 12-month backfill stays under 1.5 GB (1GB went over), and a 7M-row month "
                                                   "loads as fast as with 1GB or 4GB (27 s); re-running such a month's "
                                                   "`gold/fct_trips` spills dbt's temporary table (12-13 s against 8 s with 4GB, "
                                                   "which used 3.5 GB). Raise it where memory allows")),
        ("TAXI_PG_DSN", "(the PG* variables)", ("`TAXI_WAREHOUSE=postgres`: a libpq URL or `key=value` DSN; unset, libpq "
                                                "reads `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`… Read "
                                                "when connecting, never shown (its password is masked in every error)")),
        ("GCP_PROJECT_ID", "(from the credentials)", "`TAXI_LAKE=gcs` / `TAXI_WAREHOUSE=bigquery`: the Google Cloud project"),
        ("GCP_LOCATION", "US", "where the bucket and the datasets are created"),
        ("GCP_DATASET", "taxi", "BigQuery datasets `<GCP_DATASET>_bronze`, `_silver`, `_staging`, `_gold`, `_marts`, `_seeds`"),
        ("TAXI_BIGQUERY_API_ENDPOINT", "(Google's)", "a BigQuery emulator's URL (anonymous credentials then)"),
        ("TAXI_DBT_FORK_SERVER", "1", ("`0`: every dbt invocation starts its own `dbt` process; by default a run "
                                       "forks each one from a server that has dbt imported already, saving ~2 s of "
                                       "dbt's start-up per invocation (taxi_platform/dbt_server.py)")),
        ("TAXI_BIGQUERY_BRONZE_VIA", "load", ("`load`: a load job copies the GCS object into a staging table; "
                                              "`external`: an external table over the object (the old 08_gcp_taxi flow)")),
        ("GOOGLE_APPLICATION_CREDENTIALS", "(unset)", "service-account key file (read by the Google client libraries)"),
    ),
    *_group(
        "Lake",
        ("TAXI_LAKE", "local", "`local` or `gcs`"),
        ("TAXI_LAKE_DIR", "<TAXI_DATA_DIR>/lake", "the local lake folder"),
        ("GCP_BUCKET_NAME", "(unset)", "the lake bucket (required for `TAXI_LAKE=gcs`)"),
        ("STORAGE_EMULATOR_HOST", "(unset)", "a GCS emulator's URL"),
    ),
    *_group(
        "Automation",
        ("TAXI_AUTOMATION_DEFAULT_STATUS", "stopped", ("`running`: schedules and the publication sensor start running "
                                                       "(a toggle set in the UI wins)")),
        ("TAXI_SCHEDULE_TIMEZONE", "UTC", "IANA timezone of the monthly schedules and of the freshness deadlines"),
        ("TAXI_LANDING_DIR", "<TAXI_DATA_DIR>/landing", ("where the landing sensor watches for "
                                                          "`<colour>_tripdata_YYYY-MM.csv[.gz]` or `.parquet`: a folder, "
                                                          "or a GCS prefix `gs://bucket/prefix/`")),
        ("TAXI_LANDING_SETTLE_SECONDS", "10", "a landed file is taken once unchanged this long"),
        ("TAXI_PUBLICATION_INTERVAL_SECONDS", "3600", "how often the publication sensor probes the source"),
        ("TAXI_WATCHDOG_INTERVAL_SECONDS", "60", "how often `dead_run_sensor` looks for runs whose worker died"),
        ("TAXI_AUTOMATION_INTERVAL_SECONDS", "30", "how often `dbt_automation_sensor` evaluates the dbt assets' conditions"),
        ("TAXI_DATA_DOCS_URL", "http://127.0.0.1:3001", ("where the checks' Data Docs links point: `taxi-platform docs` "
                                                         "(started by `make dev`) serves `<TAXI_DATA_DIR>/gx_data_docs` there")),
    ),
    *_group(
        "Freshness",
        ("TAXI_SILVER_DUE_CRON", "`0 12 10 * *` with `TAXI_SOURCE=tlc`; `none` with `mirror`",
         ("when each `silver/<colour>_tripdata` is due a new month: at every tick of this cron one must have "
          "been materialized since the tick before (the default: month M by the 10th of M+3, as the TLC "
          "publishes M 47–62 days after it ends). `none`: no freshness policy")),
        ("TAXI_MART_DUE_CRON", "silver's, a day later (`0 12 11 * *`)",
         ("when `marts/dm_monthly_zone_revenue` is due, in the same way (a day after silver's deadline, "
          "derived from `TAXI_SILVER_DUE_CRON` when its day of the month is 1–27). `none`: no policy")),
    ),
    *_group(
        "Alerts",
        ("TAXI_ALERT_WEBHOOK_URL", "(unset)", "a Slack-compatible incoming webhook (never shown: it is its token)"),
        ("TAXI_ALERT_SMTP_HOST", "(unset)", "SMTP server for e-mail alerts (with `TAXI_ALERT_EMAIL_TO`)"),
        ("TAXI_ALERT_SMTP_PORT", "25", "SMTP port"),
        ("TAXI_ALERT_SMTP_SECURITY", "starttls on 587, ssl on 465, else none", "`none`, `starttls` or `ssl`"),
        ("TAXI_ALERT_SMTP_USER", "(unset)", "SMTP login"),
        ("TAXI_ALERT_SMTP_PASSWORD", "(unset)", "SMTP password"),
        ("TAXI_ALERT_EMAIL_TO", "(unset)", "comma-separated recipients"),
        ("TAXI_ALERT_EMAIL_FROM", "taxi-platform@localhost", "sender"),
        ("TAXI_DAGSTER_UI_URL", "http://127.0.0.1:3000", "the UI's address, for the links in alerts"),
    ),
    *_group(
        "Dagster instance (`taxi-platform instance`, `make dev`)",
        ("DAGSTER_HOME", "./.dagster_home (make)", "the instance's folder"),
        ("DAGSTER_PG_HOST", "(unset: SQLite)", "set: the instance keeps runs and events in PostgreSQL (dagster.yaml)"),
        ("DAGSTER_PG_PORT", "5432", "its port"),
        ("DAGSTER_PG_DB", "dagster", "its database"),
        ("DAGSTER_PG_USER", "postgres", "its user"),
        ("DAGSTER_PG_PASSWORD", "(empty)", "its password"),
    ),
]

# Set by the platform itself, for the GX file-context's config substitution: never by users.
INTERNAL_VARIABLES = {"TAXI_GX_WAREHOUSE_URL", "TAXI_GX_RESULTS_DIR", "TAXI_GX_DATA_DOCS_DIR",
                      "TAXI_DBT_MIN_DATE", "TAXI_DBT_MAX_DATE"}


def settings_markdown() -> str:
    """docs/settings.md, from :data:`VARIABLES`."""
    lines = ["# Settings", "",
             ("Every environment variable the platform reads, generated from `taxi_platform/settings.py` "
              "(`make docs`; a unit test keeps this page and the code in step)."), "",
             ("The resources receive the variables that are set as Dagster `EnvVar`s: the UI "
              "(Deployment → Resources) shows each one by its name, never its value, and a run reads it "
              "where its steps run. An unset variable keeps the default below."), ""]
    for group in dict.fromkeys(v.group for v in VARIABLES):
        lines += [f"## {group}", "", "| variable | default | what |", "|---|---|---|"]
        lines += [f"| `{v.name}` | {v.default} | {v.what} |" for v in VARIABLES if v.group == group]
        lines.append("")
    return "\n".join(lines)


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
    force_reload: bool = False
    automation_interval_seconds: int = 30
    data_docs_url: str = DEFAULT_DATA_DOCS_URL

    @property
    def bigquery_bucket(self) -> str:
        """The bucket BigQuery's load jobs read: the lake's, when the lake is GCS."""
        return self.gcp_bucket_name if self.lake == "gcs" else ""

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

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
            duckdb_memory_limit=env.get("TAXI_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT,
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
            force_reload=(env.get("TAXI_FORCE_RELOAD") or "").lower() in ("1", "true", "yes"),
            automation_interval_seconds=int(env.get("TAXI_AUTOMATION_INTERVAL_SECONDS") or 30),
            data_docs_url=(env.get("TAXI_DATA_DOCS_URL") or DEFAULT_DATA_DOCS_URL).rstrip("/"),
        )


def setting(name: str, transform=str):
    """A pydantic ``default_factory`` reading one field of :class:`Settings` from the
    environment when a resource is made (in the process that runs the step). Run config that sets
    another field of the resource keeps this one: an explicit value given when the resource is
    defined would be replaced, with every other field, by any run config for that resource."""
    return lambda: transform(getattr(Settings.from_env(), name))


class FromEnvironment:
    """Mixin of the resources: :meth:`from_env` makes one whose settings are ``EnvVar``s, so the UI
    (Deployment → Resources) shows each setting's variable name and never its value, a secret's
    included, and the value is read where the step runs. ``ENV_FIELDS`` maps a field to its
    variable; a variable unset when the definitions load keeps the field's default (a
    ``default_factory`` of :func:`setting`: derived from other settings, e.g. the DuckDB file from
    TAXI_DATA_DIR). Only plain strings go through ``EnvVar``: numbers and choices that are
    normalised (lower-cased, validated) keep :func:`setting`."""

    ENV_FIELDS: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **values):
        from dagster import EnvVar

        env = os.environ if env is None else env
        configured = {field: EnvVar(name) for field, name in cls.ENV_FIELDS.items() if env.get(name)}
        return cls(**{**configured, **values})

    def _with_updated_values(self, values):
        # Run config for some fields (e.g. the source's timeout_seconds) is merged by Dagster over
        # the resource's own field values, where a field given as an EnvVar still holds the
        # variable's *name* (Dagster resolves EnvVars only in the config it processes): resolve
        # those here, or the run would use "TAXI_SOURCE_URL" as the URL.
        from dagster import EnvVar

        resolved = dict(values or {})
        for field, value in self._get_non_default_public_field_values().items():
            if field not in resolved and isinstance(value, EnvVar):
                resolved[field] = value.get_value()
        return super()._with_updated_values(resolved)


def _landing_location(value: str) -> str:
    return value if value.startswith("gs://") else str(Path(value).absolute())


if __name__ == "__main__":
    print(settings_markdown(), end="")
