"""The Great Expectations suites in gx/ as Dagster asset checks, one per suite per asset.

- ``bronze/<colour>_tripdata`` -> ``gx_bronze_suite``: the bronze gate, blocking. It validates a
  month's file as landed, *before* it replaces the month in bronze (:class:`BronzeGate`, which
  the bronze asset calls and whose result it reports as its own check): an exact expectation
  failing (an empty month, timestamps that do not read as timestamps) refuses the file at ERROR,
  the month loaded before stays, and silver does not run for it.
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
the file at a time; dbt steps take it too) and close GX's connections before leaving it; an
error that could carry a connection string is raised with it masked.
"""

from collections.abc import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    asset_check,
)

from taxi_platform.checks.gx_context import data_docs_dir, open_context, served_page, served_url
from taxi_platform.checks.gx_runner import (
    SuiteOutcome,
    check_result,
    validate_file,
    validate_load,
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
from taxi_platform.lake import LakeResource
from taxi_platform.partitions import all_colours_partitions, partitions_for
from taxi_platform.schemas import SCHEMAS, TripSchema
from taxi_platform.secrets import secrets_masked
from taxi_platform.steps import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL, retried_only_if_transient
from taxi_platform.warehouse import WarehouseResource

# validate(gx context, suite, month or None, warehouse, run name) -> the outcome of one batch
Validate = Callable[..., SuiteOutcome]
_BATCHES = {"silver": "the month's rows", "bronze": "the month's rows",
            "gold": "the partition's rows (the month's yellow and green files)"}
GATE_CHECK = "gx_bronze_suite"


def _rules_text(suite: Suite) -> str:
    return "; ".join(f"{r.description} [{'WARN' if r.severity == 'warning' else 'ERROR'}]" for r in suite.rules)


def _docs_index() -> str | None:
    """The Data Docs' index page as ``taxi-platform docs`` serves it (TAXI_DATA_DOCS_URL)."""
    index = data_docs_dir() / "index.html"
    return served_url(index.absolute().as_uri()) if index.is_file() else None


def _publish(lake: LakeResource, outcomes: list[SuiteOutcome]) -> str | None:
    """Where a browser reads these validations' Data Docs: ``taxi-platform docs`` serving the local
    site, or, with the GCS lake, the pages copied into the bucket (the outcomes' links are
    rewritten). Returns the index's URL."""
    pages = {o.data_docs_url: page for o in outcomes if (page := served_page(o.data_docs_url))}
    urls = lake.publish_data_docs(data_docs_dir(), sorted(set(pages.values())))
    for o in outcomes:
        if pages.get(o.data_docs_url) in urls:
            o.data_docs_url = urls[pages[o.data_docs_url]]
    return urls.get("index.html") or _docs_index()


def _build(suite: Suite, validate: Validate, partitions_def, extra_description: str = ""):
    asset_key = AssetKey([suite.schema_name, suite.table_name])
    partitioned = suite.batch != WHOLE_TABLE
    batch = _BATCHES.get(suite.schema_name, "the month's rows") if partitioned else "the whole table"

    @asset_check(
        asset=asset_key,
        name=f"gx_{suite.schema_name}_suite",
        blocking=False,
        partitions_def=partitions_def if partitioned else None,
        compute_kind="great_expectations",
        retry_policy=TRANSIENT_RETRY_POLICY,  # a lost connection is retried; a failed expectation is a result
        pool=WAREHOUSE_POOL,
        metadata={"gx_suite": suite.name, "gx_checkpoint": suite.name},
        description=(
            f"Great Expectations suite `{suite.name}` (gx/expectations/{suite.name}.json) on "
            f"{batch} of `{suite.asset_name}`, validated in the warehouse"
            + extra_description + f". Expectations: {_rules_text(suite)}"),
    )
    @retried_only_if_transient
    def _gx_check(context: AssetCheckExecutionContext, warehouse: WarehouseResource,
                  lake: LakeResource) -> AssetCheckResult:
        months = context.partition_keys if partitioned else [None]
        with warehouse.exclusive(), secrets_masked(warehouse.secrets()), open_context(warehouse) as gx_context:
            outcomes = [validate(gx_context, suite, month, warehouse, context.run.run_id) for month in months]
        for o in outcomes:
            context.log.info(f"{suite.name} on {o.filename}: {o.evaluated - len(o.failures)}/{o.evaluated} "
                             f"expectations passed in {o.seconds:.2f}s")
        return check_result(suite, outcomes, docs_index=_publish(lake, outcomes))

    return _gx_check


def build_silver_check(schema: TripSchema):
    """The check of a colour's silver suite: one batch per month's file (the one silver holds)."""
    suite = silver_suite(schema)

    def validate(gx_context, suite, month, warehouse, run_name):
        filename = warehouse.silver_file(schema, month) or SCHEMAS[schema.colour].filename(month)
        return validate_file(gx_context, suite, month, filename, run_name=run_name)

    return _build(suite, validate, partitions_for(schema.colour))


def build_gold_check(suite: Suite):
    """gold/fct_trips: one batch per partition, the rows of the month's files of both colours."""
    def validate(gx_context, suite, month, warehouse, run_name):
        files = [warehouse.silver_file(s, month) or s.filename(month) for s in SCHEMAS.values()]
        return validate_partition(gx_context, suite, month, files, run_name=run_name)

    return _build(suite, validate, all_colours_partitions())


def build_mart_check(suite: Suite):
    """An unpartitioned mart: the whole table, reconciled with silver in SQL."""
    def validate(gx_context, suite, month, warehouse, run_name):
        return validate_table(gx_context, suite, run_name=run_name)

    return _build(suite, validate, None,
                  extra_description=" (rebuilt whole on every run, so validated whole), reconciled with silver")


class BronzeGate:
    """The GX bronze suite as the bronze asset's gate: called with each landed load before it is
    published (taxi_platform/warehouse/port.py), it returns None to let the load through or the
    reason to refuse it (an exact expectation failed), and keeps the outcomes for the check result
    the asset reports."""

    def __init__(self, schema: TripSchema, warehouse: WarehouseResource, context: AssetExecutionContext,
                 lake: LakeResource):
        self.suite, self.warehouse, self.context, self.lake = bronze_suite(schema), warehouse, context, lake
        self.outcomes: list[SuiteOutcome] = []
        self.unchanged: list[str] = []

    @classmethod
    def spec(cls, schema: TripSchema) -> AssetCheckSpec:
        suite = bronze_suite(schema)
        return AssetCheckSpec(
            GATE_CHECK, asset=AssetKey(["bronze", schema.table]), blocking=True,
            description=(f"The bronze gate: Great Expectations suite `{suite.name}` "
                         f"(gx/expectations/{suite.name}.json) on each month's file as landed, before it "
                         "replaces the month: a file failing an exact expectation is refused and the month "
                         f"loaded before stays; silver does not run for it. Expectations: {_rules_text(suite)}"))

    def for_month(self, month: str, filename: str) -> Callable[[str], str | None]:
        def gate(load_id: str) -> str | None:
            with self.warehouse.exclusive(), secrets_masked(self.warehouse.secrets()), \
                    open_context(self.warehouse) as gx_context:
                outcome = validate_load(gx_context, self.suite, month, filename, load_id,
                                        run_name=self.context.run.run_id)
            self.outcomes.append(outcome)
            self.context.log.info(f"bronze gate on {filename}: {outcome.evaluated - len(outcome.failures)}/"
                                  f"{outcome.evaluated} expectations passed in {outcome.seconds:.2f}s")
            if outcome.success or outcome.severity != AssetCheckSeverity.ERROR:
                return None
            return check_result(self.suite, [outcome]).description
        return gate

    def result(self) -> AssetCheckResult | None:
        """The check result of the run's months (None when the check is not selected)."""
        selected = {k.name for k in self.context.selected_asset_check_keys}
        if GATE_CHECK not in selected:
            return None
        if not self.outcomes:  # every month unchanged: validated when it was loaded
            return AssetCheckResult(check_name=GATE_CHECK, passed=True, metadata={"unchanged": True},
                                    description=(f"{self.suite.name}: not validated again: "
                                                 f"{', '.join(self.unchanged)} unchanged since it passed"))
        result = check_result(self.suite, self.outcomes, docs_index=_publish(self.lake, self.outcomes))
        return AssetCheckResult(check_name=GATE_CHECK, passed=result.passed, severity=result.severity,
                                description=result.description, metadata=result.metadata)


def build_gx_checks() -> list:
    return [*[build_silver_check(schema) for schema in SCHEMAS.values()],
            build_gold_check(gold_suite()), build_mart_check(mart_suite())]
