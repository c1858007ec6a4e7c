"""The Great Expectations suites in gx/ as Dagster asset checks, one per suite per asset.

- ``bronze/<colour>_tripdata`` -> ``gx_bronze_suite``: blocking. An exact expectation failing
  (the column contract, an empty month, timestamps that do not read as timestamps) fails it at
  ERROR and silver does not run for that month in the same run.
- ``silver/<colour>_tripdata`` -> ``gx_silver_suite``: ERROR for exact rules (unique_row_id,
  codes and zone ids), WARN for the ``mostly`` ones (stray pickups, negative fares, …).

Each check is partitioned like its asset and validates the partition(s) of the run, not the
whole table. Validations run inside ``warehouse.exclusive()`` (DuckDB: one process on the file
at a time) and close GX's connections before leaving it.
"""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetKey, asset_check

from taxi_platform.checks.gx_context import data_docs_dir, open_context
from taxi_platform.checks.gx_runner import check_result, validate_month
from taxi_platform.checks.gx_suites import Suite, bronze_suite, silver_suite
from taxi_platform.partitions import monthly_partitions
from taxi_platform.resources.warehouse import WarehouseResource
from taxi_platform.schemas import SCHEMAS, TripSchema


def build_gx_check(suite: Suite, schema: TripSchema, blocking: bool):
    asset_key = AssetKey([suite.schema_name, suite.table_name])
    rules = "; ".join(f"{r.description} [{'WARN' if r.severity == 'warning' else 'ERROR'}]" for r in suite.rules)

    @asset_check(
        asset=asset_key,
        name=f"gx_{suite.schema_name}_suite",
        blocking=blocking,
        partitions_def=monthly_partitions,
        compute_kind="great_expectations",
        metadata={"gx_suite": suite.name, "gx_checkpoint": suite.name},
        description=(
            f"Great Expectations suite `{suite.name}` (gx/expectations/{suite.name}.json) on the "
            f"month's rows of `{suite.asset_name}`, validated in the warehouse"
            + (", blocking: silver waits for it and does not run when it fails at ERROR" if blocking else "")
            + f". Expectations: {rules}"),
    )
    def _gx_check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        with warehouse.exclusive(), open_context(warehouse) as gx_context:
            outcomes = [validate_month(gx_context, suite, schema, month, run_name=context.run.run_id)
                        for month in context.partition_keys]
        for o in outcomes:
            context.log.info(f"{suite.name} on {o.filename}: {o.evaluated - len(o.failures)}/{o.evaluated} "
                             f"expectations passed in {o.seconds:.2f}s")
        index = data_docs_dir() / "index.html"
        return check_result(suite, outcomes, docs_index=str(index) if index.is_file() else None)

    return _gx_check


gx_checks = [
    *[build_gx_check(bronze_suite(schema), schema, blocking=True) for schema in SCHEMAS.values()],
    *[build_gx_check(silver_suite(schema), schema, blocking=False) for schema in SCHEMAS.values()],
]
