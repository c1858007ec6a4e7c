"""silver/<colour>_tripdata: typed, keyed by unique_row_id, deduplicated, one month per file."""

from dataclasses import asdict, fields

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    TableColumnDep,
    TableColumnLineage,
)

from taxi_platform.assets.common import (
    column_schema,
    months_of,
    months_table,
    preview_table,
    report_month,
)
from taxi_platform.assets.factory import ingest_asset, ingest_key
from taxi_platform.assets.unchanged import LOADS, last_load, loads_metadata, unchanged_load
from taxi_platform.schemas import SILVER_EXTRA_COLUMNS, TripSchema
from taxi_platform.steps import in_one_session
from taxi_platform.warehouse import SilverResult, WarehouseResource


def column_lineage(bronze: AssetKey, schema: TripSchema) -> TableColumnLineage:
    """Where each silver column comes from in bronze: its own column typed, ``unique_row_id`` the
    hash of the key columns, ``filename`` as landed (the UI's column lineage)."""
    deps = {name: [TableColumnDep(bronze, name)] for name in schema.sql_names}
    deps["unique_row_id"] = [TableColumnDep(bronze, name) for name in schema.key_columns]
    deps["filename"] = [TableColumnDep(bronze, "filename")]
    return TableColumnLineage(deps_by_column=deps)


UNIQUENESS_CHECK = "unique_row_id_is_unique"


def _uniqueness_as_of(context: AssetExecutionContext, key: AssetKey, filename: str,
                      month: str) -> tuple[str, int] | None:
    """(run id, duplicated ids) of the uniqueness check of the run that left the table as it is,
    when every month of this run was unchanged (unchanged_load: the months' rows are as recorded
    and no other month was written by another run since); None when that run has no such
    evaluation (then the check runs)."""
    found = last_load(context, key, month, filename)
    if found is None:
        return None
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as Status

    history = context.instance.event_log_storage.get_asset_check_execution_history(  # (not this run's planned one)
        AssetCheckKey(key, UNIQUENESS_CHECK), limit=1, status={Status.SUCCEEDED, Status.FAILED})
    if not history or history[0].run_id != found[1] or history[0].event is None:
        return None
    evaluation = history[0].event.dagster_event.event_specific_data
    duplicated = (getattr(evaluation, "metadata", None) or {}).get("duplicated_ids")
    return (found[1], int(duplicated.value)) if duplicated is not None else None


def build_silver_asset(schema: TripSchema, source: str | None = None):
    table, key = f"silver.{schema.table}", ingest_key("silver", schema)

    @ingest_asset(
        schema, "silver", source=source, check_specs=[
            AssetCheckSpec(UNIQUENESS_CHECK, asset=key,
                           description="No unique_row_id appears twice in the whole table (on PostgreSQL, "
                                       "whose unique index on it refuses any repeat: that the index is in "
                                       "place; on BigQuery, billed by the bytes read: among the rows picked "
                                       "up on the days of the run's months, where a repeat of one of their "
                                       "ids can be)."),
            AssetCheckSpec("no_rows_quarantined", asset=key,
                           description="Every row of the month's file could be typed (WARN: "
                                       f"see {table}_quarantine for the file, line and reason)."),
        ],
        description=(
            f"The {schema.colour} trips typed and keyed, in `{table}`: the file's columns "
            "(names lower-cased) with their types (the same for every month and source: "
            "`airport_fee` and `cbd_congestion_fee` NULL where a file lacks them), `filename`, and "
            "`unique_row_id` = md5 of "
            "`vendorid|pickup|dropoff|pulocationid|dolocationid|fare_amount|trip_distance` "
            "(the old flows' key, with fare and distance so a voided trip's negated twin stays "
            "a separate row; the contract is in taxi_platform/warehouse/port.py). Duplicates within a "
            "file collapse to the first in file order; an id owned by an earlier month's file stays "
            "there. Rows that cannot be typed go to "
            f"`{table}_quarantine` with their line and reason; above TAXI_MAX_QUARANTINE_FRACTION "
            "the month fails instead. A month's rows are replaced in one transaction, whichever "
            "file (CSV or Parquet) they came from before. A month "
            "built from the same bronze file, with its rows all there and no other month written "
            "since, is not rebuilt (`unchanged: true`; the run tag `taxi/reload=true` forces it)."
        ),
    )
    @in_one_session
    def silver_tripdata(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        results, loads, rebuilt_any = [], {}, False
        bronze_key = ingest_key("bronze", schema)
        with warehouse.metered() as billed:
            for month in months_of(context):
                in_bronze = warehouse.published_load(schema, month)
                filename = in_bronze.filename if in_bronze else schema.filename(month)
                recorded_bronze = last_load(context, bronze_key, month, filename)
                bronze_sha256 = recorded_bronze[0].get("sha256") if recorded_bronze and in_bronze else None
                # Once this step rebuilt a month, later ones may have lost ids to it: rebuild those too.
                load = None if rebuilt_any else unchanged_load(
                    context, key, month, filename, warehouse, bronze_sha256,
                    counts={"rows_out": table, "rows_quarantined": f"{table}_quarantine"},
                    other_months_matter=True)
                if load:
                    recorded = {f.name: load[f.name] for f in fields(SilverResult)}
                    r = SilverResult(**{**recorded,
                                        "quarantine_reasons": [tuple(x) for x in recorded["quarantine_reasons"]]})
                    context.log.info(f"{filename}: unchanged ({r.rows_out:,} rows in {table}, built from the "
                                     "same bronze file, no other month written since): not rebuilt")
                else:
                    r = warehouse.build_silver(schema, month, max_quarantine_fraction=warehouse.max_quarantine_fraction)
                    rebuilt_any = True
                    context.log.info(
                        f"{filename}: {r.rows_in:,} rows in, {r.rows_out:,} in {table}, "
                        f"{r.duplicates_collapsed} duplicates collapsed, {r.rows_quarantined} quarantined")
                loads[filename] = {**asdict(r), "sha256": bronze_sha256, "warehouse": warehouse.identity(),
                                   "unchanged": load is not None}
                results.append((month, r))

            # Every month unchanged: the table is as the last run left it, whose check stands.
            as_of = None if rebuilt_any or not results else _uniqueness_as_of(context, key, results[0][1].filename,
                                                                             results[0][0])
            duplicated = as_of[1] if as_of else warehouse.duplicate_ids(schema, [r.filename for _, r in results])
        quarantined = [(m, r) for m, r in results if r.rows_quarantined]
        quarantine_detail = "; ".join(
            f"{r.filename} (partition {m}): {r.rows_quarantined} rows, "
            + ", ".join(f"column {c} {n} rows e.g. {ex}" for c, n, ex in r.quarantine_reasons)
            for m, r in quarantined)
        checks = [
            AssetCheckResult(check_name=UNIQUENESS_CHECK, passed=duplicated == 0,
                             description=(f"Every month of this run was unchanged: the table is as run "
                                          f"{as_of[0]} left it, so its count stands.") if as_of else None,
                             metadata={"duplicated_ids": duplicated,
                                       **({"as_of_run": as_of[0]} if as_of else {})}),
            AssetCheckResult(check_name="no_rows_quarantined", passed=not quarantined,
                             severity=AssetCheckSeverity.WARN,
                             description=quarantine_detail or None,
                             metadata={"rows_quarantined": sum(r.rows_quarantined for _, r in results),
                                       "quarantine_table": f"{table}_quarantine"}),
        ]
        for m, r in results:
            report_month(context, m, {
                "dagster/row_count": r.rows_out, "rows_in": r.rows_in,
                "duplicates_collapsed": r.duplicates_collapsed,
                "duplicates_in_other_files": r.duplicates_in_other_files,
                "rows_quarantined": r.rows_quarantined, "pickups_outside_month": r.pickups_outside_month,
                "file": r.filename, "unchanged": loads[r.filename]["unchanged"],
                LOADS: loads_metadata({r.filename: loads[r.filename]}),
                # a preview reads the table: one month's, not one per month of a backfill
                **({"preview": preview_table(warehouse, table, r.filename)} if len(results) == 1 else {})})
        metadata = {
            "dagster/column_schema": column_schema(
                [(name, "VARCHAR", text) for name, text in SILVER_EXTRA_COLUMNS.items()]
                + [(c.sql_name, c.type, c.description) for c in schema.columns]),
            "dagster/column_lineage": column_lineage(ingest_key("bronze", schema), schema),
            "table": table,
            # what the whole run read (BigQuery bills by the bytes a query reads)
            **({"bytes_processed": sum(billed)} if billed is not None else {}),
            **({"months": months_table([
                {"month": m, "rows_in": r.rows_in, "rows_out": r.rows_out,
                 "duplicates": r.duplicates_collapsed, "quarantined": r.rows_quarantined}
                for m, r in results])} if len(results) > 1 else {}),
        }
        return MaterializeResult(metadata=metadata, check_results=checks)

    return silver_tripdata


