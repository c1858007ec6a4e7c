"""Resources: where files come from (source), where they are kept (lake), where they land
(warehouse), and dbt (the CLI that builds the models in the warehouse)."""

from __future__ import annotations

import importlib.util

from taxi_platform.dbt_project import dbt_resource
from taxi_platform.lake import LakeResource, LocalLakeResource
from taxi_platform.lake.gcs import GCSLakeResource
from taxi_platform.settings import Settings
from taxi_platform.sources import TaxiSourceResource
from taxi_platform.warehouse import WarehouseResource
from taxi_platform.warehouse.bigquery import BigQueryWarehouseResource
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from taxi_platform.warehouse.postgres import PostgresWarehouseResource


def _require_google_cloud(choice: str) -> None:
    """The Google Cloud libraries are an extra: say how to get them instead of an ImportError later."""
    missing = [m for m in ("dagster_gcp", "sqlalchemy_bigquery", "dbt.adapters.bigquery") if not _importable(m)]
    if missing:
        raise ValueError(f"{choice} needs the Google Cloud libraries ({', '.join(missing)} missing): run "
                         "`make install-gcp` (or `pip install -r requirements-gcp.lock`)")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def build_lake(settings: Settings, from_env: bool = False) -> LakeResource:
    """The lake TAXI_LAKE names; ``from_env``: its settings are the environment's variables
    (``EnvVar``s, read where the step runs; see :func:`resources_from_env`), else the values in
    ``settings``."""
    if settings.lake == "local":
        return LocalLakeResource.from_env() if from_env else LocalLakeResource(root=str(settings.lake_dir))
    if settings.lake == "gcs":
        _require_google_cloud("TAXI_LAKE=gcs")
        if not settings.gcp_bucket_name:
            raise ValueError("TAXI_LAKE=gcs needs GCP_BUCKET_NAME (and GCP_PROJECT_ID, GCP_LOCATION; "
                             "credentials from GOOGLE_APPLICATION_CREDENTIALS)")
        if from_env:
            return GCSLakeResource.from_env()
        return GCSLakeResource(project=settings.gcp_project_id, bucket=settings.gcp_bucket_name,
                               location=settings.gcp_location)
    raise ValueError(f"TAXI_LAKE={settings.lake!r} is not a lake this build knows (use: local, gcs)")


def build_warehouse(settings: Settings, from_env: bool = False) -> WarehouseResource:
    """The warehouse TAXI_WAREHOUSE names; ``from_env`` as for :func:`build_lake`."""
    if settings.warehouse == "duckdb":
        if from_env:
            return DuckDBWarehouseResource.from_env()
        return DuckDBWarehouseResource(path=str(settings.duckdb_path),
                                       memory_limit=settings.duckdb_memory_limit)
    if settings.warehouse in ("postgres", "postgresql"):
        # The DSN (TAXI_PG_DSN, or the PG* variables when it is unset) is read where the step
        # connects: the UI and the run config show the variable's name, never the password.
        return PostgresWarehouseResource.from_env() if from_env else PostgresWarehouseResource()
    if settings.warehouse == "bigquery":
        _require_google_cloud("TAXI_WAREHOUSE=bigquery")
        if from_env:
            return BigQueryWarehouseResource.from_env()
        return BigQueryWarehouseResource(
            project=settings.gcp_project_id, location=settings.gcp_location,
            dataset=settings.gcp_dataset,
            bucket=settings.gcp_bucket_name if settings.lake == "gcs" else "",
            api_endpoint=settings.bigquery_api_endpoint, bronze_via=settings.bigquery_bronze_via)
    raise ValueError(
        f"TAXI_WAREHOUSE={settings.warehouse!r} is not a warehouse this build knows "
        "(use: duckdb, postgres, bigquery)")


def resources_from_env(settings: Settings | None = None) -> dict:
    """The resources of the one Definitions. With no ``settings`` each resource's settings are
    the environment's variables, as ``EnvVar``s (the UI shows their names, never their values)
    or, for a variable left unset, its default, read in the process that runs the step
    (taxi_platform/settings.py: FromEnvironment); the backends are chosen by TAXI_LAKE and
    TAXI_WAREHOUSE when the definitions load."""
    if settings is not None:
        return {"source": TaxiSourceResource(base_url=settings.source_url, download_dir=str(settings.raw_dir),
                                             gcp_project_id=settings.gcp_project_id),
                "lake": build_lake(settings), "warehouse": build_warehouse(settings), "dbt": dbt_resource()}
    settings = Settings.from_env()
    return {"source": TaxiSourceResource.from_env(), "lake": build_lake(settings, from_env=True),
            "warehouse": build_warehouse(settings, from_env=True), "dbt": dbt_resource()}


def configured_warehouse() -> WarehouseResource:
    """The warehouse TAXI_WAREHOUSE names, as the definitions load: what the asset definitions
    ask it (its Dagster kind, its table names and console links) when they are built. Values,
    not ``EnvVar``s: an ``EnvVar`` field holds the variable's name until a run resolves it."""
    return build_warehouse(Settings.from_env())


def table_metadata(warehouse: WarehouseResource, table: str) -> dict:
    """An asset's table as the UI shows it: its name in the warehouse and, where the warehouse has
    a console, a link to the table there."""
    from dagster import MetadataValue

    url = warehouse.table_url(table)
    return {"dagster/table_name": warehouse.table_name(table), **({"console": MetadataValue.url(url)} if url else {})}
