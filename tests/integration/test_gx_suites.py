"""The GX suites validate real months in a real DuckDB file, through GX's SQL data source, and
each seeded defect fails the expectation it should, at the severity it should, with a message
that says what is wrong."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetCheckSeverity

from taxi_platform.checks.gx_context import GX_DIR, open_context
from taxi_platform.checks.gx_runner import check_result, validate_file, validate_load
from taxi_platform.checks.gx_suites import bronze_suite, silver_suite
from taxi_platform.errors import BadInputError
from taxi_platform.schemas import YELLOW
from taxi_platform.settings import DEFAULT_DATA_DOCS_URL, Settings
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from tests.support.runs import rewrite_csv

REAL = "yellow_tripdata_2019-01.csv.gz"
WRITE_A_TABLE = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                 "c.execute('CREATE TABLE after_gx AS SELECT 1 AS x'); c.close()")
FARE, PICKUP = YELLOW.sql_names.index("fare_amount"), YELLOW.sql_names.index("tpep_pickup_datetime")


@pytest.fixture
def warehouse(platform_env):
    return DuckDBWarehouseResource(path=str(platform_env.duckdb_path))


def _load(warehouse, month, path):
    name = YELLOW.filename(month)
    warehouse.load_bronze(YELLOW, month, name, str(path))
    warehouse.build_silver(YELLOW, month, name)


def _validate(warehouse, suite, month="2019-01"):
    filename = YELLOW.filename(month)
    with warehouse.exclusive(), open_context(warehouse, Settings.from_env()) as context:
        if suite.batch == "by_load":  # the bronze gate: the month's load
            load = warehouse.published_load(YELLOW, month)
            outcome = validate_load(context, suite, month, filename, load.load_id if load else "none",
                                    run_name="test")
        else:
            outcome = validate_file(context, suite, month, filename, run_name="test")
    return outcome, check_result(suite, [outcome])


def _second_passes(monkeypatch) -> list[list[str]]:
    """Record, per validation, which failed expectations the runner fetched examples for."""
    from taxi_platform.checks import gx_runner

    calls, original = [], gx_runner._with_examples

    def spy(checkpoint, batch_parameters, parameters, failed):
        examples = original(checkpoint, batch_parameters, parameters, failed)
        calls.append([f"{r.expectation_config.type}:{r.expectation_config.kwargs.get('column')}"
                      for r in failed if gx_runner._wants_examples(r)])
        return examples

    monkeypatch.setattr(gx_runner, "_with_examples", spy)
    return calls


def _generated(tmp_path, month, rows, edit=None):
    from taxi_platform.sample_source import write_month

    path = write_month(YELLOW, month, rows, tmp_path / "gen")
    return rewrite_csv(path, tmp_path / "edited" / path.name, edit) if edit else path


def _every_nth_row(n, column, change):
    def edit(lines):
        out = [lines[0]]
        for i, line in enumerate(lines[1:]):
            fields = line.split(",")
            if line and i % n == 0:
                fields[column] = change(fields[column])
            out.append(",".join(fields))
        return out
    return edit


def test_the_real_yellow_january_sample_passes_the_bronze_and_silver_suites(warehouse, tlc_dir, platform_env,
                                                                              monkeypatch):
    _load(warehouse, "2019-01", tlc_dir / "mirror/yellow" / REAL)
    second_passes = _second_passes(monkeypatch)
    for suite in (bronze_suite(YELLOW), silver_suite(YELLOW)):
        outcome, result = _validate(warehouse, suite)
        assert outcome.failures == [], [f.message for f in outcome.failures]
        assert result.passed and outcome.row_count == 10_000
        assert outcome.evaluated == len(suite.rules) == outcome.successful
        docs = result.metadata["data_docs"].value
        assert docs.startswith(f"{DEFAULT_DATA_DOCS_URL}/validations/") and docs.endswith(".html")
        assert (platform_env.data_dir / "gx_data_docs" / docs.removeprefix(DEFAULT_DATA_DOCS_URL + "/")).is_file()
    assert second_passes == [[], []]  # nothing failed: no examples looked for


def test_unreadable_timestamps_fail_the_bronze_gate_at_error_and_the_file_is_not_published(warehouse, tlc_dir,
                                                                                             tmp_path):
    _load(warehouse, "2019-01", tlc_dir / "mirror/yellow" / REAL)
    before = warehouse.published_load(YELLOW, "2019-01")
    # every tenth pickup written with a UTC offset: DuckDB reads it, silently dropping the offset
    edited = rewrite_csv(tlc_dir / "mirror/yellow" / REAL, tmp_path / REAL,
                         _every_nth_row(10, PICKUP, lambda v: v + "+01:00"))
    outcomes = []

    def gate(load_id):
        with warehouse.exclusive(), open_context(warehouse, Settings.from_env()) as context:
            outcomes.append(validate_load(context, bronze_suite(YELLOW), "2019-01", REAL, load_id, run_name="t"))
        result = check_result(bronze_suite(YELLOW), outcomes)
        return None if result.passed else result.description

    with pytest.raises(BadInputError, match="refused by the bronze gate") as refused:
        warehouse.load_bronze(YELLOW, "2019-01", REAL, str(edited), gate=gate)
    (failure,) = outcomes[0].failures
    assert (failure.expectation, failure.column) == ("expect_column_values_to_match_regex", "tpep_pickup_datetime")
    assert failure.severity == "critical" and failure.unexpected_count == 1_000
    assert "expect_column_values_to_match_regex on tpep_pickup_datetime failed" in str(refused.value)
    assert warehouse.published_load(YELLOW, "2019-01") == before  # the month loaded before stays
    assert warehouse.query("SELECT count(*) FROM bronze.yellow_tripdata_landed")[0][0] == 10_000


def test_a_null_unique_row_id_fails_the_silver_suite_at_error(warehouse, tlc_dir):
    _load(warehouse, "2019-01", tlc_dir / "mirror/yellow" / REAL)
    warehouse.query("ALTER TABLE silver.yellow_tripdata ALTER COLUMN unique_row_id DROP NOT NULL")
    warehouse.query("UPDATE silver.yellow_tripdata SET unique_row_id = NULL WHERE rowid % 1000 = 0")
    outcome, result = _validate(warehouse, silver_suite(YELLOW))
    (failure,) = outcome.failures
    assert (failure.expectation, failure.column) == ("expect_column_values_to_not_be_null", "unique_row_id")
    assert failure.unexpected_count == 10 and failure.unexpected_percent == pytest.approx(0.1)
    assert result.severity == AssetCheckSeverity.ERROR and not result.passed
    assert "expect_column_values_to_not_be_null on unique_row_id failed" in result.description
    assert "10 unexpected rows (0.10%)" in result.description


def test_many_negative_fares_fail_the_silver_suite_at_warn(warehouse, tmp_path, monkeypatch):
    # one trip in four with a negated fare: far more than voided trips explain
    path = _generated(tmp_path, "2019-02", 2_000, _every_nth_row(4, FARE, lambda v: "-" + v.lstrip("-")))
    _load(warehouse, "2019-02", path)
    second_passes = _second_passes(monkeypatch)
    outcome, result = _validate(warehouse, silver_suite(YELLOW), "2019-02")
    (failure,) = outcome.failures
    assert (failure.expectation, failure.column) == ("expect_column_values_to_be_between", "fare_amount")
    assert failure.severity == "warning" and failure.mostly == 0.99
    assert failure.unexpected_percent > 20
    # the examples come from a second pass on the failed expectation alone
    assert second_passes == [["expect_column_values_to_be_between:fare_amount"]]
    assert len(failure.unexpected_values) == 5 and all(v < 0 for v in failure.unexpected_values)
    assert result.severity == AssetCheckSeverity.WARN and not result.passed
    assert "fare_amount is not negative" in result.description and "allowed at most 1.0%" in result.description
    assert "| fare_amount | warning |" in result.metadata["failures"].value


def test_out_of_month_pickups_fail_the_silver_suite_at_warn(warehouse, tmp_path):
    # a third of February's trips picked up in December
    path = _generated(tmp_path, "2019-02", 1_500,
                      _every_nth_row(3, PICKUP, lambda v: "2018-12" + v[7:]))
    _load(warehouse, "2019-02", path)
    outcome, result = _validate(warehouse, silver_suite(YELLOW), "2019-02")
    (failure,) = outcome.failures
    assert (failure.expectation, failure.column) == ("expect_column_values_to_be_between", "tpep_pickup_datetime")
    assert failure.unexpected_percent > 30 and len(failure.unexpected_values) == 5
    assert all(str(v).startswith(("2018-", "2019-01")) for v in failure.unexpected_values)
    assert result.severity == AssetCheckSeverity.WARN
    assert "tpep_pickup_datetime falls within the partition's month" in result.description


def test_a_month_missing_from_the_table_fails_clearly(warehouse, tlc_dir):
    _load(warehouse, "2019-01", tlc_dir / "mirror/yellow" / REAL)
    _, result = _validate(warehouse, silver_suite(YELLOW), "2019-03")
    assert result.severity == AssetCheckSeverity.ERROR and not result.passed
    assert "silver.yellow_tripdata has no rows of yellow_tripdata_2019-03.csv.gz" in result.description


def test_a_validation_reads_its_batch_without_listing_every_batch_of_the_table(warehouse, tlc_dir, monkeypatch):
    from great_expectations.datasource.fluent import sql_datasource

    _load(warehouse, "2019-01", tlc_dir / "mirror/yellow" / REAL)

    def listed(*args, **kwargs):  # GX's own way: SELECT DISTINCT over the whole table
        raise AssertionError("GX listed every batch of the table")

    monkeypatch.setattr(sql_datasource, "_partitioner_and_sql_asset_to_batch_identifier_data", listed)
    for suite in (bronze_suite(YELLOW), silver_suite(YELLOW)):
        outcome, result = _validate(warehouse, suite)
        assert result.passed, result.description
        assert outcome.row_count > 0


def test_after_a_validation_another_process_can_write_the_duckdb_file(warehouse, tlc_dir, platform_env):
    _load(warehouse, "2019-01", tlc_dir / "mirror/yellow" / REAL)
    _validate(warehouse, silver_suite(YELLOW))
    done = subprocess.run(
        [sys.executable, "-c", WRITE_A_TABLE, str(platform_env.duckdb_path)],
        check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_process_loads_the_context_once_and_each_validation_still_lets_go_of_the_file(
        warehouse, tlc_dir, platform_env, tmp_path):
    _load(warehouse, "2019-01", tlc_dir / "mirror/yellow" / REAL)
    with warehouse.exclusive(), open_context(warehouse, Settings.from_env()) as first:
        pass
    outcome, result = _validate(warehouse, silver_suite(YELLOW))
    assert result.passed and outcome.row_count > 0
    # the file is free between validations: another process writes it, and the next
    # validation through the same context reads what it wrote
    done = subprocess.run([sys.executable, "-c", WRITE_A_TABLE, str(platform_env.duckdb_path)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    warehouse.query("DELETE FROM silver.yellow_tripdata WHERE unique_row_id IN "
                    "(SELECT unique_row_id FROM silver.yellow_tripdata LIMIT 3)")
    again, _ = _validate(warehouse, silver_suite(YELLOW))
    assert again.row_count == outcome.row_count - 3
    with warehouse.exclusive(), open_context(warehouse, Settings.from_env()) as second:
        assert second is first
    # another warehouse file is another context (its data source and its results' folders)
    other = DuckDBWarehouseResource(path=str(tmp_path / "other.duckdb"))
    with other.exclusive(), open_context(other, Settings.from_env()) as elsewhere:
        assert elsewhere is not first


def _earlier_validations(platform_env, count):
    """``count`` copies of the one validation so far (result and page), each an earlier run."""
    results, pages = platform_env.data_dir / "gx_validations", platform_env.data_dir / "gx_data_docs" / "validations"
    [result] = list(results.rglob("*.json"))
    [page] = list(pages.rglob("*.html"))
    suite = result.relative_to(results).parts[0]
    for i in range(count):
        run = (f"earlier-{i}", f"2020{1 + i // 28 % 12:02d}{1 + i % 28:02d}T000000.000000Z")
        for base, file in ((results, result), (pages, page)):
            folder = base.joinpath(suite, *run)
            folder.mkdir(parents=True)
            (folder / file.name).write_bytes(file.read_bytes())
    return pages


def test_a_validation_updates_data_docs_without_reading_every_earlier_validation(
        warehouse, tlc_dir, platform_env, monkeypatch):
    from great_expectations.data_context.store.tuple_store_backend import TupleFilesystemStoreBackend
    from great_expectations.data_context.store.validation_results_store import ValidationResultsStore

    _load(warehouse, "2019-01", tlc_dir / "mirror/yellow" / REAL)
    _validate(warehouse, silver_suite(YELLOW))
    pages = _earlier_validations(platform_env, 150)
    walked, read = [], []
    list_keys, get = TupleFilesystemStoreBackend.list_keys, ValidationResultsStore.get

    def spy_list_keys(self, prefix=()):
        walked.append(Path(self.full_base_directory, *prefix))
        return list_keys(self, prefix)

    def spy_get(self, key):
        read.append(key)
        return get(self, key)

    monkeypatch.setattr(TupleFilesystemStoreBackend, "list_keys", spy_list_keys)
    monkeypatch.setattr(ValidationResultsStore, "get", spy_get)
    _, result = _validate(warehouse, silver_suite(YELLOW))

    assert result.passed
    # the new validation's page, and every earlier page is kept
    docs_dir = platform_env.data_dir / "gx_data_docs"
    assert (docs_dir / result.metadata["data_docs"].value.removeprefix(DEFAULT_DATA_DOCS_URL + "/")).is_file()
    assert len(list(pages.rglob("*.html"))) == 152
    # the result store is not listed; the site's pages are, one folder for each kind (and the
    # suites, in gx/)
    assert not any(platform_env.data_dir / "gx_validations" in [w, *w.parents] for w in walked), walked
    assert set(walked) <= {docs_dir / "validations", docs_dir / "expectations", GX_DIR / "expectations"}, walked
    # results read: the new one for its page, the newest 100 for the index (GX's: all 152)
    assert len(read) == 1 + 100
    index = (docs_dir / "index.html").read_text()
    linked = re.findall(r"'_table_row_link_path': '(validations/[^']+\.html)'", index)
    assert len(set(linked)) == 100
    assert linked[0] == result.metadata["data_docs"].value.removeprefix(DEFAULT_DATA_DOCS_URL + "/")
    assert not any("/earlier-0/" in link for link in linked)  # the oldest copies fall off
