"""The two instance configs load as Dagster reads them: dagster.yaml on a real PostgreSQL
server, dagster.dev.yaml on SQLite files in DAGSTER_HOME; both queue runs, retry crashed runs
and give the warehouse pool one slot."""

from __future__ import annotations

import shutil
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

REPO = Path(__file__).resolve().parents[2]


def load(home: Path, config: str) -> DagsterInstance:
    home.mkdir()
    shutil.copyfile(REPO / config, home / "dagster.yaml")
    return DagsterInstance.from_config(str(home))


def assert_operations_settings(instance: DagsterInstance) -> None:
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert not instance.run_retries_retry_on_asset_or_op_failure
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert instance.run_monitoring_enabled
    sensor_ticks = instance.get_tick_retention_settings(InstigatorType.SENSOR)
    assert sensor_ticks[TickStatus.SKIPPED] == 7 and sensor_ticks[TickStatus.SUCCESS] == 90
    assert instance.get_tick_retention_settings(InstigatorType.SCHEDULE)[TickStatus.FAILURE] == 90


def test_the_deployment_config_stores_everything_in_postgres(postgres_server, tmp_path, monkeypatch):
    db = postgres_server.create_database("dagster_config")
    for key, value in {"DAGSTER_PG_HOST": postgres_server.host, "DAGSTER_PG_PORT": str(postgres_server.port),
                       "DAGSTER_PG_DB": db, "DAGSTER_PG_USER": postgres_server.user,
                       "DAGSTER_PG_PASSWORD": postgres_server.password}.items():
        monkeypatch.setenv(key, value)
    with load(tmp_path / "home", "dagster.yaml") as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert_operations_settings(instance)
        # The pool limit is the instance's: claimed slots live in PostgreSQL.
        instance.event_log_storage.initialize_concurrency_limit_to_default("taxi_warehouse")
        assert instance.event_log_storage.get_concurrency_info("taxi_warehouse").slot_count == 1
        instance.event_log_storage.set_concurrency_slots("taxi_warehouse", 4)  # what the CLI/UI do
        assert instance.event_log_storage.get_concurrency_info("taxi_warehouse").slot_count == 4


def test_the_dev_config_keeps_sqlite_files_in_dagster_home(tmp_path):
    home = tmp_path / "home"
    with load(home, "dagster.dev.yaml") as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert_operations_settings(instance)
    assert (home / "history").is_dir() or (home / "storage").is_dir()
