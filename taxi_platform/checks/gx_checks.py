"""The Great Expectations suites in gx/ as Dagster asset checks, one per suite per asset.

- ``bronze/<colour>_tripdata`` -> ``gx_bronze_suite``: blocking. An exact expectation failing
  (the column contract, an empty month, timestamps that do not read as timestamps) fails it at
  ERROR and silver does not run for that month in the same run.
- ``silver/<colour>_tripdata`` -> ``gx_silver_suite``: ERROR for exact rules (unique_row_id
  present, codes and zone ids), WARN for the ``mostly`` ones (stray pickups, negative fares, …).
  That unique_row_id is unique is the silver asset's own check ``unique_row_id_is_unique``
  (the whole table, every materialization), not counted again here.
- ``gold/fct_trips`` -> ``gx_gold_suite``: ERROR for exact rules on the partition's rows (both
  colours' files of the month): trip_id not null, (service_type, trip_id) unique.
- ``marts/dm_monthly_zone_revenue`` -> ``gx_marts_suite`` (unpartitioned, like the mart): ERROR
  when the mart's trips or total_amount per (revenue_month, service_type) do not reconcile with
  silver; the mismatching months are in the metadata.

Each partitioned check is partitioned like its asset and validates the partition(s) of the run,
not the whole table. Validations run inside ``warehouse.exclusive()`` (DuckDB: one process on
the file at a time; dbt steps take it too) and close GX's connections before leaving it.
"""

from collections.abc import Callable

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetKey, asset_check

from taxi_platform.checks.gx_context import data_docs_dir, open_context
from taxi_platform.checks.gx_runner import (
    SuiteOutcome,
    check_result,
    validate_month,
    validate_partition,
    validate_table,
)
from taxi_platform.checks.gx_suites import (
    WHOLE_TABLE,
    Suite,
    bronze_suite,
    gold_suite,
    mart_suite,
    silver_suite,
)
from taxi_platform.partitions import monthly_partitions
from taxi_platform.warehouse import WarehouseResource
from taxi_platform.schemas import SCHEMAS, TripSchema
from taxi_platform.secrets import secrets_masked

# validate(gx context, suite, month or None, run name) -> the outcome of one batch
Validate = Callable[..., SuiteOutcome]
_BATCHES = {"silver": "the month's rows", "bronze": "the month's rows",
            "gold": "the partition's rows (the month's yellow and green files)"}


def _build(suite: Suite, validate: Validate, blocking: bool, extra_description: str = ""):
    asset_key = AssetKey([suite.schema_name, suite.table_name])
    rules = "; ".join(f"{r.description} [{'WARN' if r.severity == 'warning' else 'ERROR'}]" for r in suite.rules)
    partitioned = suite.batch != WHOLE_TABLE
    batch = _BATCHES.get(suite.schema_name, "the month's rows") if partitioned else "the whole table"

    @asset_check(
        asset=asset_key,
        name=f"gx_{suite.schema_name}_suite",
        blocking=blocking,
        partitions_def=monthly_partitions if partitioned else None,
        compute_kind="great_expectations",
        metadata={"gx_suite": suite.name, "gx_checkpoint": suite.name},
        description=(
            f"Great Expectations suite `{suite.name}` (gx/expectations/{suite.name}.json) on "
            f"{batch} of `{suite.asset_name}`, validated in the warehouse"
            + extra_description + f". Expectations: {rules}"),
    )
    def _gx_check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        months = context.partition_keys if partitioned else [None]
        with warehouse.exclusive(), secrets_masked(warehouse.secrets()), open_context(warehouse) as gx_context:
            outcomes = [validate(gx_context, suite, month, run_name=context.run.run_id) for month in months]
        for o in outcomes:
            context.log.info(f"{suite.name} on {o.filename}: {o.evaluated - len(o.failures)}/{o.evaluated} "
                             f"expectations passed in {o.seconds:.2f}s")
        index = data_docs_dir() / "index.html"
        return check_result(suite, outcomes, docs_index=str(index) if index.is_file() else None)

    return _gx_check


def build_gx_check(suite: Suite, schema: TripSchema, blocking: bool):
    """The check of a colour's bronze or silver suite: one batch per month's file."""
    def validate(gx_context, suite, month, run_name):
        return validate_month(gx_context, suite, schema, month, run_name=run_name)

    return _build(suite, validate, blocking,
                  ", blocking: silver waits for it and does not run when it fails at ERROR" if blocking else "")


def build_gold_check(suite: Suite):
    """gold/fct_trips: one batch per partition, the rows of the month's files of both colours."""
    def validate(gx_context, suite, month, run_name):
        return validate_partition(gx_context, suite, month, run_name=run_name)

    return _build(suite, validate, blocking=False)


def build_mart_check(suite: Suite):
    """An unpartitioned mart: the whole table, reconciled with silver in SQL."""
    def validate(gx_context, suite, month, run_name):
        return validate_table(gx_context, suite, run_name=run_name)

    return _build(suite, validate, blocking=False,
                  extra_description=" (rebuilt whole on every run, so validated whole), reconciled with silver")


gx_checks = [
    *[build_gx_check(bronze_suite(schema), schema, blocking=True) for schema in SCHEMAS.values()],
    *[build_gx_check(silver_suite(schema), schema, blocking=False) for schema in SCHEMAS.values()],
    build_gold_check(gold_suite()),
    build_mart_check(mart_suite()),
]
