"""The Great Expectations suites, and the script that writes them into the committed ``gx/``.

Run ``make gx-suites`` (``python -m taxi_platform.checks.gx_suites``) after changing a suite
here or a column contract in ``taxi_platform/schemas.py``. The JSON files in ``gx/`` refer to
each other by id (checkpoint -> validation definition -> suite and batch definition), which is
why they are written by this script and never by hand. The script is idempotent: an object whose
content is unchanged keeps its id and its file, so re-running it on a clean tree changes nothing.

Rules about severity: an expectation with ``mostly`` (real data is messy there) has GX severity
``warning`` and fails its asset check at WARN; an exact expectation has severity ``critical``
and fails it at ERROR (the bronze gate blocks silver only on those).

Suite parameters, filled per partition by the asset check: ``month_start`` and ``month_end``
(the half-open month of the partition, ``YYYY-MM-DD HH:MM:SS``).

Batches: bronze validates one landed load, before it is published (``WHERE filename = ... AND
load_id = ...`` on ``bronze.<colour>_tripdata_landed``); silver one file (``WHERE filename = ...``);
gold validates one partition, the rows of the month's two files (a query asset adds the month
of each row's file as ``partition_month``, and the batch is ``WHERE partition_month = 'YYYY-MM'``);
the mart, rebuilt whole on every run, is validated whole and reconciled with silver by an
``UnexpectedRowsExpectation`` whose SQL returns the mismatching (month, service type) rows.
Every metric is computed in the warehouse.

Cost: GX computes the unexpected counts of a batch's column expectations in one SQL query, so
a suite is about one scan of the batch. The checkpoints ask for counts only (result format BASIC
with no examples: see :attr:`Suite.checkpoint_result_format`); the runner fetches examples for
the expectations that failed, and only for those (gx_runner).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from taxi_platform.schemas import SCHEMAS, TripSchema

# A published timestamp: 2019-01-01 00:46:40 (fraction of a second tolerated). Checked as
# text in bronze, where every column is still VARCHAR.
TIMESTAMP_REGEX = (r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) "
                   r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?$")
MAX_TRIP_MILES = 500  # a yellow or green cab trip beyond this is a meter error
MOSTLY_IN_MONTH = 0.99  # the real files carry stray pickups from earlier months
MOSTLY_DROPOFF_AFTER_PICKUP = 0.99
MOSTLY_NOT_NEGATIVE = 0.99  # voided trips appear as twins with negated amounts
MOSTLY_SANE_DISTANCE = 0.999
# Zones 264 and 265 are the lookup's "Unknown": no usable coordinate, or one outside every zone
# (the 2009-2010 coordinates placed by taxi_platform/sources/zones.py). The real 2019-01 yellow
# sample (shared/data/tlc/mirror) has 2.2% of its pickups and 2.3% of its drop-offs there, the
# sample source's 2009-2010 months 3%; a month with more than 5% was not placed as it should be
# (coordinates lost or swapped, a changed layout): WARN.
UNKNOWN_ZONES = [264, 265]
MOSTLY_IN_A_ZONE = 0.95
PAYMENT_TYPES = [0, 1, 2, 3, 4, 5, 6]
LOCATION_IDS = (1, 265)
MONTH_START, MONTH_END = {"$PARAMETER": "month_start"}, {"$PARAMETER": "month_end"}
SERVICE_TYPES = ["Yellow", "Green"]
# The month of a row's silver file (yellow_tripdata_2019-01.csv.gz -> 2019-01), in SQL every
# warehouse speaks: a partition of gold/fct_trips is exactly the rows of its month's two files.
PARTITION_MONTH_SQL = "substr(filename, strpos(filename, '_tripdata_') + 10, 7)"
# Mart and silver totals are sums of 8-byte floats added in different orders: equal means
# within half a cent plus one part in 10^9 (0.15 USD on a 150-million-dollar month).
AMOUNT_TOLERANCE_SQL = "0.005 + 1e-9 * abs({silver})"

EXAMPLES = 5  # unexpected values shown per failed expectation

# Batch definitions (see gx_context): one landed load (the bronze gate), one file, one partition
# (both colours' files), the table.
BY_LOAD, BY_FILE, BY_MONTH, WHOLE_TABLE = "by_load", "by_file", "by_month", "whole_table"


@dataclass(frozen=True)
class Rule:
    """One expectation: its GX class name and keyword arguments (``mostly`` -> WARN)."""

    type: str  # e.g. "ExpectColumnValuesToBeBetween"
    kwargs: dict[str, Any]
    description: str

    @property
    def mostly(self) -> float | None:
        return self.kwargs.get("mostly")

    @property
    def severity(self) -> str:
        return "warning" if self.mostly is not None and self.mostly < 1 else "critical"

    def build(self):
        import great_expectations.expectations as gxe

        return getattr(gxe, self.type)(**self.kwargs, severity=self.severity,
                                       description=self.description)


@dataclass(frozen=True)
class Suite:
    name: str  # also the name of its validation definition and its checkpoint
    schema_name: str  # warehouse schema (bronze, silver, gold, marts)
    table_name: str
    rules: list[Rule] = field(default_factory=list)
    batch: str = BY_FILE  # BY_FILE (one `filename`), BY_MONTH (a partition's files) or WHOLE_TABLE
    query: str | None = None  # a GX query asset instead of the table (BY_MONTH: adds partition_month)
    # BASIC: counts and shares, no examples (the runner fetches the examples of the failed
    # expectations only, in a second pass). COMPLETE: the checkpoint returns the rows a SQL rule found.
    result_format: str = "BASIC"

    @property
    def checkpoint_result_format(self) -> dict:
        """The checkpoint's result_format. With BASIC, GX would scan the whole batch once more
        per expectation for up to ``partial_unexpected_count`` examples even when nothing is
        unexpected (for a regex on 7M rows: as long as counting); 0 makes those queries
        ``LIMIT 0``, which the warehouse answers without reading anything."""
        return {"result_format": self.result_format,
                "partial_unexpected_count": EXAMPLES if self.result_format == "COMPLETE" else 0}

    @property
    def asset_name(self) -> str:
        return f"{self.schema_name}.{self.table_name}"


def bronze_suite(schema: TripSchema) -> Suite:
    """The bronze gate: a month's file as landed, before it replaces the month in bronze (one
    batch per load: ``WHERE filename = ... AND load_id = ...`` on ``bronze.<colour>_tripdata_landed``). Its column
    contract is checked before the file is landed (taxi_platform/files.py), by name, with a
    message naming every missing or unexpected column."""
    rules = [
        Rule("ExpectTableRowCountToBeBetween", {"min_value": 1},
             "The month's file landed at least one trip."),
    ]
    for column in (schema.pickup, schema.dropoff):
        rules.append(Rule(
            "ExpectColumnValuesToMatchRegex", {"column": column, "regex": TIMESTAMP_REGEX},
            f"{column} reads as a timestamp (YYYY-MM-DD HH:MM:SS), as the TLC publishes it."))
    return Suite(f"bronze_{schema.table}", "bronze", f"{schema.table}_landed", rules, batch=BY_LOAD)


def silver_suite(schema: TripSchema) -> Suite:
    money = ["fare_amount", "total_amount"]
    rules = [
        Rule("ExpectTableRowCountToBeBetween", {"min_value": 1},
             "The month's file has trips in silver."),
        # Not "unique" here: the silver asset's own check `unique_row_id_is_unique` proves it on
        # the whole table at every materialization (a superset of one month), and on a real month
        # GX's uniqueness SQL (a GROUP BY over 7M md5 strings, then the duplicates' examples) was
        # half the time and most of the memory of both suites.
        Rule("ExpectColumnValuesToNotBeNull", {"column": "unique_row_id"},
             "Every trip has its unique_row_id (its uniqueness, on the whole table, is the silver "
             "asset's check unique_row_id_is_unique)."),
        Rule("ExpectColumnValuesToBeBetween",
             {"column": schema.pickup, "min_value": MONTH_START, "max_value": MONTH_END,
              "strict_max": True, "mostly": MOSTLY_IN_MONTH},
             f"{schema.pickup} falls within the partition's month (a few stray pickups from "
             "earlier months are normal in the published files)."),
        Rule("ExpectColumnPairValuesAToBeGreaterThanB",
             {"column_A": schema.dropoff, "column_B": schema.pickup, "or_equal": True,
              "ignore_row_if": "either_value_is_missing", "mostly": MOSTLY_DROPOFF_AFTER_PICKUP},
             "The drop-off is not before the pick-up."),
        *[Rule("ExpectColumnValuesToBeBetween",
               {"column": column, "min_value": 0, "mostly": MOSTLY_NOT_NEGATIVE},
               f"{column} is not negative (voided trips' negated twins are a small share).")
          for column in money],
        Rule("ExpectColumnValuesToBeBetween",
             {"column": "passenger_count", "min_value": 0, "max_value": 9},
             "passenger_count is 0-9 (or empty)."),
        Rule("ExpectColumnValuesToBeInSet", {"column": "payment_type", "value_set": PAYMENT_TYPES},
             "payment_type is a TLC code 0-6 (or empty)."),
        *[Rule("ExpectColumnValuesToBeBetween",
               {"column": column, "min_value": LOCATION_IDS[0], "max_value": LOCATION_IDS[1]},
               f"{column} is a TLC taxi zone {LOCATION_IDS[0]}-{LOCATION_IDS[1]}.")
          for column in ("pulocationid", "dolocationid")],
        *[Rule("ExpectColumnValuesToNotBeInSet",
               {"column": column, "value_set": UNKNOWN_ZONES, "mostly": MOSTLY_IN_A_ZONE},
               f"At least {MOSTLY_IN_A_ZONE:.0%} of the month's {what} are in a real taxi zone, not "
               "264/265 (unknown: for 2009-2010, placed from the coordinates; the result's share "
               "is the month's).")
          for column, what in (("pulocationid", "pickups"), ("dolocationid", "drop-offs"))],
        Rule("ExpectColumnValuesToBeBetween",
             {"column": "trip_distance", "max_value": MAX_TRIP_MILES, "mostly": MOSTLY_SANE_DISTANCE},
             f"trip_distance is below {MAX_TRIP_MILES} miles (the real files have meter errors "
             "like 55,000 miles, rarely)."),
    ]
    return Suite(f"silver_{schema.table}", "silver", schema.table, rules)


def gold_suite() -> Suite:
    """gold/fct_trips, one partition at a time: the rows of the month's yellow and green files."""
    rules = [
        Rule("ExpectTableRowCountToBeBetween", {"min_value": 1},
             "The month's files have trips in fct_trips."),
        Rule("ExpectColumnValuesToNotBeNull", {"column": "trip_id"},
             "Every trip has its trip_id."),
        Rule("ExpectColumnValuesToBeInSet", {"column": "service_type", "value_set": SERVICE_TYPES},
             "service_type is Yellow or Green."),
        Rule("ExpectCompoundColumnsToBeUnique", {"column_list": ["service_type", "trip_id"]},
             "No (service_type, trip_id) appears twice in the month, the grain of fct_trips "
             "(unique_row_id is unique within one colour's silver table)."),
    ]
    query = f"SELECT *, {PARTITION_MONTH_SQL} AS partition_month FROM gold.fct_trips"
    return Suite("gold_fct_trips", "gold", "fct_trips", rules, batch=BY_MONTH, query=query)


def _silver_month_totals(schema: TripSchema) -> str:
    return (f"SELECT CAST(date_trunc('month', {schema.pickup}) AS DATE) AS revenue_month, "
            f"'{schema.colour.capitalize()}' AS service_type, count(*) AS trips, "
            f"sum(total_amount) AS total_amount FROM silver.{schema.table} "
            f"GROUP BY CAST(date_trunc('month', {schema.pickup}) AS DATE)")


def mart_reconciliation_sql() -> str:
    """The (revenue_month, service_type) rows where the mart's trips or total_amount differ from
    the same sums over silver (a pickup counts in its month), or that only one side has."""
    silver = "\n    UNION ALL\n    ".join(_silver_month_totals(s) for s in SCHEMAS.values())
    tolerance = AMOUNT_TOLERANCE_SQL.format(silver="coalesce(s.total_amount, 0)")
    return f"""WITH mart AS (
    SELECT revenue_month, service_type, sum(total_monthly_trips) AS trips,
           sum(revenue_monthly_total_amount) AS total_amount
    FROM {{batch}} AS mart_rows
    GROUP BY revenue_month, service_type
), silver AS (
    {silver}
)
SELECT coalesce(m.revenue_month, s.revenue_month) AS revenue_month,
       coalesce(m.service_type, s.service_type) AS service_type,
       m.trips AS mart_trips, s.trips AS silver_trips,
       m.total_amount AS mart_total_amount, s.total_amount AS silver_total_amount
FROM mart AS m
FULL OUTER JOIN silver AS s
    ON m.revenue_month IS NOT DISTINCT FROM s.revenue_month AND m.service_type = s.service_type
WHERE m.trips IS NULL OR s.trips IS NULL OR m.trips <> s.trips
   OR abs(coalesce(m.total_amount, 0) - coalesce(s.total_amount, 0)) > {tolerance}
ORDER BY 1, 2"""


def mart_suite() -> Suite:
    """marts/dm_monthly_zone_revenue, whole (it is rebuilt whole on every run), against silver."""
    rules = [
        Rule("ExpectTableRowCountToBeBetween", {"min_value": 1},
             "The mart has rows."),
        Rule("UnexpectedRowsExpectation", {"unexpected_rows_query": mart_reconciliation_sql()},
             "Per revenue_month and service_type, the mart's total_monthly_trips and "
             "revenue_monthly_total_amount sum to the trips and total_amount of silver's yellow "
             "and green trips picked up in that month (amounts to the cent); the rows found are "
             "the months that differ."),
    ]
    return Suite("marts_dm_monthly_zone_revenue", "marts", "dm_monthly_zone_revenue", rules,
                 batch=WHOLE_TABLE, result_format="COMPLETE")


def all_suites() -> list[Suite]:
    return ([bronze_suite(s) for s in SCHEMAS.values()]
            + [silver_suite(s) for s in SCHEMAS.values()]
            + [gold_suite(), mart_suite()])


# -- writing gx/ -----------------------------------------------------------------------------

_PROJECT_CONFIG = """\
# The Great Expectations 1.x file context of taxi_platform. Written by
# `make gx-suites` (taxi_platform/checks/gx_suites.py): edit the suites there, not here.
# Environment-free: the asset checks set the three variables below (taxi_platform/checks/gx_context.py).
#   TAXI_GX_WAREHOUSE_URL   SQLAlchemy URL of the warehouse (DuckDB or PostgreSQL; BigQuery later)
#   TAXI_GX_RESULTS_DIR     validation results (<TAXI_DATA_DIR>/gx_validations)
#   TAXI_GX_DATA_DOCS_DIR   the Data Docs site (<TAXI_DATA_DIR>/gx_data_docs)
config_version: 4.0
config_variables_file_path: uncommitted/config_variables.yml
plugins_directory:
analytics_enabled: false
data_context_id: 6f1d6c7e-3a43-4c59-9a36-6e0d0d7a2c11
progress_bars:  # no 'Calculating Metrics' bars in the run logs
  globally: false
  metric_calculations: false

stores:
  expectations_store:
    class_name: ExpectationsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: expectations/
  validation_results_store:
    class_name: ValidationResultsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: ${TAXI_GX_RESULTS_DIR}
  checkpoint_store:
    class_name: CheckpointStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: checkpoints/
  validation_definition_store:
    class_name: ValidationDefinitionStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: validation_definitions/

expectations_store_name: expectations_store
validation_results_store_name: validation_results_store
checkpoint_store_name: checkpoint_store

data_docs_sites:
  local_site:
    class_name: SiteBuilder
    show_how_to_buttons: false
    store_backend:
      module_name: taxi_platform.checks.gx_docs
      class_name: SiteFolderStoreBackend
      base_directory: ${TAXI_GX_DATA_DOCS_DIR}
    # Updated after each validation without reading the history (taxi_platform/checks/gx_docs.py):
    # the pages asked for, each kind listed from its folder, and an index of the newest 100
    # validations. Every validation keeps its page (linked from its asset check in Dagster).
    site_index_builder:
      module_name: taxi_platform.checks.gx_docs
      class_name: RecentValidationsIndexBuilder
      validation_results_limit: 100
    site_section_builders:
      expectations:
        module_name: taxi_platform.checks.gx_docs
        class_name: RequestedPagesSectionBuilder
      validations:
        module_name: taxi_platform.checks.gx_docs
        class_name: RequestedPagesSectionBuilder
      profiling: None  # nothing here is profiled
"""


def _config_of(expectation) -> dict:
    config = expectation.configuration.to_json_dict()
    config.pop("id", None)
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def _result_format_of(checkpoint) -> dict:
    result_format = checkpoint.result_format
    if not isinstance(result_format, dict):
        result_format = {"result_format": result_format}
    return {k: str(getattr(v, "value", v)) if k == "result_format" else v for k, v in result_format.items()}


def write_context(project_root: Path, scratch_dir: Path | None = None, log=print) -> list[str]:
    """Create or update ``<project_root>/gx``; return what changed (empty when nothing did)."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.partitioners import PartitionerColumnValue, PartitionerMultiColumnValue
    from great_expectations.exceptions import DataContextError

    from taxi_platform.checks.gx_context import (
        DATA_DOCS_SITE,
        DATASOURCE,
        close_context,
        load_context,
    )
    from taxi_platform.warehouse.duckdb import gx as duckdb_gx

    gx_dir = project_root / "gx"
    scratch = Path(scratch_dir or project_root / "gx" / "uncommitted" / "scratch")
    # The context needs its variables to load. Writing never touches the real warehouse: GX
    # checks that a table asset's table exists, so it gets an empty stand-in of each table.
    scratch.mkdir(parents=True, exist_ok=True)
    stand_in = scratch / "tables.duckdb"
    stand_in.unlink(missing_ok=True)
    with duckdb.connect(str(stand_in)) as conn:
        for suite in all_suites():
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {suite.schema_name}")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {suite.asset_name} (filename VARCHAR, load_id VARCHAR)")
    os.environ["TAXI_GX_WAREHOUSE_URL"] = duckdb_gx.url(stand_in)
    os.environ["TAXI_GX_RESULTS_DIR"] = str(scratch / "validations")
    os.environ["TAXI_GX_DATA_DOCS_DIR"] = str(scratch / "data_docs")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    changed: list[str] = []
    yml = gx_dir / "great_expectations.yml"
    gx_dir.mkdir(parents=True, exist_ok=True)
    text = yml.read_text() if yml.is_file() else ""
    fluent = text[text.index("fluent_datasources:"):] if "fluent_datasources:" in text else ""
    if text != _PROJECT_CONFIG + fluent:
        yml.write_text(_PROJECT_CONFIG + fluent)
        changed.append("great_expectations.yml (project config)")
    for sub in ("expectations", "validation_definitions", "checkpoints"):
        (gx_dir / sub).mkdir(exist_ok=True)
    gitignore = gx_dir / ".gitignore"
    if not gitignore.is_file() or gitignore.read_text() != "uncommitted/\n":
        gitignore.write_text("uncommitted/\n")

    context = load_context(project_root)
    wanted = all_suites()

    # The data source, its table assets, and one batch definition per asset: batch = one file.
    try:
        datasource = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError):
        datasource = context.data_sources.add_sql(DATASOURCE, connection_string="${TAXI_GX_WAREHOUSE_URL}")
        changed.append(f"data source {DATASOURCE}")
    existing_assets = {a.name: a for a in datasource.assets}
    for suite in wanted:
        current_asset = existing_assets.get(suite.asset_name)
        if current_asset is not None and getattr(current_asset, "query", None) != suite.query:
            datasource.delete_asset(suite.asset_name)  # its query changed (or table <-> query)
            current_asset = None
        if current_asset is None:
            if suite.query:
                asset = datasource.add_query_asset(suite.asset_name, query=suite.query)
                changed.append(f"query asset {suite.asset_name}")
            else:
                asset = datasource.add_table_asset(suite.asset_name, table_name=suite.table_name,
                                                   schema_name=suite.schema_name)
                changed.append(f"table asset {suite.asset_name}")
            existing_assets[suite.asset_name] = asset
        asset = datasource.get_asset(suite.asset_name)
        if suite.batch == WHOLE_TABLE:
            partitioner = None
        elif suite.batch == BY_LOAD:  # both: the file (clustering on BigQuery) and its load
            partitioner = PartitionerMultiColumnValue(column_names=["filename", "load_id"])
        else:
            column = "filename" if suite.batch == BY_FILE else "partition_month"
            partitioner = PartitionerColumnValue(column_name=column)
        current = {b.name: b for b in asset.batch_definitions}.get(suite.batch)
        if current is not None and current.partitioner != partitioner:
            asset.delete_batch_definition(suite.batch)  # another partitioner now
            current = None
        if current is None:
            if partitioner is None:
                asset.add_batch_definition_whole_table(WHOLE_TABLE)
            else:
                # validate_partitioner=False: GX validates datetime partitioners only; this one is
                # a plain column value, and the table may not exist yet.
                asset.add_batch_definition(suite.batch, partitioner=partitioner, validate_partitioner=False)
            changed.append(f"batch definition {suite.asset_name}/{suite.batch}")

    for suite in wanted:
        desired = [rule.build() for rule in suite.rules]
        desired_configs = [_config_of(e) for e in desired]
        rebuild = False
        try:
            current = context.suites.get(suite.name)
            if [_config_of(e) for e in current.expectations] != desired_configs:
                context.suites.delete(suite.name)
                rebuild = True
        except DataContextError:  # not there yet
            rebuild = True
        if rebuild:
            current = context.suites.add(gx.ExpectationSuite(name=suite.name, expectations=desired))
            changed.append(f"suite {suite.name}")

        asset = datasource.get_asset(suite.asset_name)
        batch = asset.get_batch_definition(suite.batch)
        try:
            vd = context.validation_definitions.get(suite.name)
            stale = rebuild or vd.suite.id != current.id or vd.data.id != batch.id
        except DataContextError:
            vd, stale = None, True
        if stale:
            if vd is not None:
                context.validation_definitions.delete(suite.name)
            vd = context.validation_definitions.add(
                gx.ValidationDefinition(name=suite.name, data=batch, suite=current))
            changed.append(f"validation definition {suite.name}")
        try:
            checkpoint = context.checkpoints.get(suite.name)
            stale = (stale or [v.id for v in checkpoint.validation_definitions] != [vd.id]
                     or _result_format_of(checkpoint) != suite.checkpoint_result_format)
        except DataContextError:
            checkpoint, stale = None, True
        if stale:
            if checkpoint is not None:
                context.checkpoints.delete(suite.name)
            context.checkpoints.add(gx.Checkpoint(
                name=suite.name, validation_definitions=[vd],
                actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[DATA_DOCS_SITE])],
                result_format=suite.checkpoint_result_format))
            changed.append(f"checkpoint {suite.name}")

    # Whatever gx/ holds that no suite asks for any more goes.
    for name in sorted({a.name for a in datasource.assets} - {s.asset_name for s in wanted}):
        datasource.delete_asset(name)
        changed.append(f"removed data asset {name}")
    names = {s.name for s in wanted}
    for store, folder in ((context.checkpoints, "checkpoints"),
                          (context.validation_definitions, "validation_definitions")):
        for path in sorted((gx_dir / folder).glob("*.json")):
            if path.stem not in names:
                store.delete(path.stem)
                changed.append(f"removed {folder}/{path.name}")
    for path in sorted((gx_dir / "expectations").glob("*.json")):
        if path.stem not in names:
            context.suites.delete(path.stem)
            changed.append(f"removed expectations/{path.name}")
    shutil.rmtree(gx_dir / "plugins", ignore_errors=True)
    close_context(context)
    shutil.rmtree(scratch, ignore_errors=True)
    for line in changed:
        log(f"gx: {line}")
    return changed


def main(argv: list[str] | None = None) -> int:
    from taxi_platform.checks.gx_context import PROJECT_ROOT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-root", type=Path, default=PROJECT_ROOT,
                        help="folder holding gx/ (default: the repository)")
    args = parser.parse_args(argv)
    changed = write_context(args.project_root)
    print(f"gx: {len(changed)} change(s) in {args.project_root / 'gx'}" if changed
          else f"gx: {args.project_root / 'gx'} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
