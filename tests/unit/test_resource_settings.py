"""Resources take their settings the Dagster way: a variable set in the environment reaches the
resource as an ``EnvVar`` (the UI shows the variable's name, never its value, the PostgreSQL
password included), resolved where the step runs; an unset one keeps its derived default; no
asset reads ``os.environ``."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import build_resources

from taxi_platform.resources import resources_from_env

ASSETS = Path(__file__).resolve().parents[2] / "taxi_platform" / "assets"


def _shown(resources: dict) -> dict:
    """What Deployment → Resources shows of each resource's configuration."""
    return {name: resource.get_resource_definition().config_schema.default_value
            for name, resource in resources.items()}


def test_a_set_variable_is_shown_by_its_name_and_resolved_when_the_resource_is_used(monkeypatch, tmp_path):
    for key in ("TAXI_WAREHOUSE", "TAXI_LAKE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TAXI_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("TAXI_LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("TAXI_TLC_URL", "http://127.0.0.1:9/trip-data")
    resources = resources_from_env()
    shown = _shown(resources)
    assert shown["warehouse"]["path"] == {"env": "TAXI_DUCKDB_PATH"}
    assert shown["lake"]["root"] == {"env": "TAXI_LAKE_DIR"}
    assert shown["source"]["tlc_url"] == {"env": "TAXI_TLC_URL"}
    with build_resources(resources) as built:
        assert built.warehouse.path == str(tmp_path / "w.duckdb")
        assert built.lake.root == str(tmp_path / "lake")
        assert built.source.tlc_url == "http://127.0.0.1:9/trip-data"


def test_the_postgresql_dsn_is_shown_as_its_variable_name_and_never_its_password(monkeypatch):
    monkeypatch.setenv("TAXI_WAREHOUSE", "postgres")
    monkeypatch.setenv("TAXI_PG_DSN", "postgresql://taxi:hunter2-secret@127.0.0.1:5/taxi")
    resources = resources_from_env()
    shown = _shown(resources)
    assert shown["warehouse"]["dsn"] == {"env": "TAXI_PG_DSN"}
    assert "hunter2-secret" not in repr(shown)
    with build_resources({"warehouse": resources["warehouse"]}) as built:
        assert built.warehouse.resolved_dsn().endswith("@127.0.0.1:5/taxi")


def test_bigquery_and_the_gcs_lake_show_their_variables_by_name(monkeypatch):
    env = {"TAXI_WAREHOUSE": "bigquery", "TAXI_LAKE": "gcs", "GCP_PROJECT_ID": "taxi-project",
           "GCP_BUCKET_NAME": "taxi-lake", "GCP_DATASET": "nyc", "GCP_LOCATION": "EU"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    shown = _shown(resources_from_env())
    assert {"project": {"env": "GCP_PROJECT_ID"}, "dataset": {"env": "GCP_DATASET"},
            "location": {"env": "GCP_LOCATION"}}.items() <= shown["warehouse"].items()
    assert {"project": {"env": "GCP_PROJECT_ID"}, "bucket": {"env": "GCP_BUCKET_NAME"},
            "location": {"env": "GCP_LOCATION"}}.items() <= shown["lake"].items()


def test_an_unset_variable_keeps_its_default_derived_from_the_data_dir(monkeypatch, tmp_path):
    for key in ("TAXI_WAREHOUSE", "TAXI_LAKE", "TAXI_DUCKDB_PATH", "TAXI_LAKE_DIR", "TAXI_FORCE_RELOAD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TAXI_DATA_DIR", str(tmp_path))
    resources = resources_from_env()
    assert "path" not in _shown(resources)["warehouse"]
    with build_resources(resources) as built:
        assert built.warehouse.path == str(tmp_path / "warehouse.duckdb")
        assert built.lake.root == str(tmp_path / "lake")
        assert built.warehouse.force_reload is False


@pytest.mark.parametrize("module", sorted(p.name for p in ASSETS.glob("*.py")))
def test_no_asset_module_reads_the_environment(module):
    text = (ASSETS / module).read_text()
    assert "os.environ" not in text and "getenv" not in text, f"taxi_platform/assets/{module} reads os.environ"


def test_run_config_for_one_field_keeps_the_others_set_by_their_variables(monkeypatch):
    monkeypatch.setenv("TAXI_SOURCE_URL", "http://127.0.0.1:9/mirror")
    source = resources_from_env()["source"]
    with build_resources({"source": source}, resource_config={"source": {"config": {"timeout_seconds": 3}}}) as built:
        assert built.source.timeout_seconds == 3
        assert built.source.base_url == "http://127.0.0.1:9/mirror"  # the value, not "TAXI_SOURCE_URL"
