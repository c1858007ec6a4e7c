"""bronze/<colour>_tripdata: each month as published, every row of the file as text, plus filename."""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from taxi_platform.assets.common import (
    column_schema,
    months_of,
    months_table,
    preview_table,
    report_month,
    upstream_file,
)
from taxi_platform.assets.factory import ingest_asset, ingest_key
from taxi_platform.assets.lake import lake_key
from taxi_platform.assets.unchanged import LOADS, forced_reload, loads_metadata, unchanged_load
from taxi_platform.checks.gx_checks import BronzeGate
from taxi_platform.errors import BadInputError
from taxi_platform.lake import LakeResource
from taxi_platform.schemas import TripSchema
from taxi_platform.sources import TaxiSourceResource
from taxi_platform.steps import fails_at_once_unless_transient
from taxi_platform.warehouse import WarehouseResource

KNOWN_COLUMNS_CHECK = "known_columns"


def build_bronze_asset(schema: TripSchema, source: str | None = None):
    table, key = f"bronze.{schema.table}", ingest_key("bronze", schema)

    @ingest_asset(
        schema, "bronze", source=source, check_specs=[
            BronzeGate.spec(schema),
            AssetCheckSpec(KNOWN_COLUMNS_CHECK, asset=key, description=(
                "Every column of the month's file is one the column contract knows (WARN: a new "
                "column is kept in bronze, named here, and not loaded into silver until "
                "taxi_platform/schemas.py knows it).")),
        ],
        description=(
            f"The {schema.colour} month as published, in the warehouse view `{table}`: every row "
            "of the file, the file's columns (names lower-cased) as text, plus `filename`. The "
            "file's columns are checked against the column contract (`taxi_platform/schemas.py`): a "
            "renamed or missing column refuses it. The file is landed beside the month, then judged by "
            "the gate (rows, untypable values, row count and pickups plausible for the month, the GX "
            "bronze suite) before it replaces the month in one transaction, whichever source the "
            "month came from before; a refused file leaves every loaded month as it was. A month "
            "whose lake object is the one already loaded, with its rows all there, is not loaded "
            "again (`unchanged: true`; the run tag `taxi/reload=true` forces it, and accepts a file "
            "the plausibility rules would refuse)."),
    )
    def bronze_tripdata(context: AssetExecutionContext, source: TaxiSourceResource, lake: LakeResource,
                        warehouse: WarehouseResource) -> Iterator:
        gate = BronzeGate(schema, warehouse, context, lake)
        rows, loads, unknown, layouts, failure = [], {}, {}, {}, None
        try:
            # Converted here (not only around the whole body) so the gate's result is reported first.
            with fails_at_once_unless_transient(), warehouse.metered() as billed:
                for month in months_of(context):
                    filename = upstream_file(context, ingest_key("lake", schema), month,
                                             source.filename(schema.colour, month))
                    obj = lake.stat(lake_key(schema, filename))
                    if obj is None:
                        raise BadInputError(
                            f"{filename} (partition {month}) is not in the lake: materialize "
                            f"lake/{schema.table} for {month} first (select '*bronze/{schema.table}' "
                            "to run every upstream layer in the same run).", file=filename, partition=month)
                    load = unchanged_load(context, key, month, filename, warehouse, obj.sha256,
                                          counts={"rows": table})
                    unchanged = load is not None
                    if unchanged:
                        gate.unchanged.append(filename)
                        context.log.info(f"{filename}: unchanged ({load['rows']:,} rows in {table}, the same "
                                         f"lake object sha256 {obj.sha256[:12]}…): not loaded again")
                    else:
                        with lake.local_copy(lake_key(schema, filename)) as path:
                            result = warehouse.load_bronze(
                                schema, month, filename, str(path), warehouse.max_quarantine_fraction,
                                gate=gate.for_month(month, filename), deliberate=forced_reload(context, warehouse),
                                published_rows=source.published_rows(schema.colour, month))
                        load = {"rows": result.rows, "sha256": obj.sha256, "warehouse": warehouse.identity()}
                        if result.layout:
                            layouts[filename] = result.layout.metadata()
                            context.log.info(f"{filename}: {result.layout.summary()}")
                        if result.unknown_columns:
                            unknown[filename] = result.unknown_columns
                        replaced = [f for f in result.replaced if f != filename]
                        context.log.info(f"{filename}: {result.rows:,} rows landed in {table}"
                                         + (f" (replacing {', '.join(replaced)})" if replaced else ""))
                    loads[filename] = load
                    rows.append({"month": month, "file": filename, "rows": load["rows"], "unchanged": unchanged})
        except Failure as exc:
            failure = exc
        gate_result = gate.result()
        if gate_result is not None:
            yield gate_result
        yield AssetCheckResult(
            check_name=KNOWN_COLUMNS_CHECK, passed=not unknown, severity=AssetCheckSeverity.WARN,
            description="; ".join(f"{f}: unknown column{'s' * (len(c) > 1)} {', '.join(c)} kept in bronze, "
                                  "not loaded into silver" for f, c in unknown.items()) or None,
            metadata={"unknown_columns": MetadataValue.json(unknown)})
        if failure is not None:
            raise failure
        for r in rows:
            report_month(context, r["month"], {
                "dagster/row_count": r["rows"], "file": r["file"], "unchanged": r["unchanged"],
                "files": MetadataValue.json({r["month"]: r["file"]}),
                LOADS: loads_metadata({r["file"]: loads[r["file"]]}),
                # yellow 2009-2010: the older layout, zones placed, vendors and payment words mapped
                **layouts.get(r["file"], {}),
                # a preview reads the table: one month's, not one per month of a backfill
                **({"preview": preview_table(warehouse, table, r["file"])} if len(rows) == 1 else {})})
        metadata = {
            "dagster/column_schema": column_schema(
                [(c, "VARCHAR", "as in the file") for c in schema.sql_names]
                + [("filename", "VARCHAR", "the source file")]),
            "table": table,
            # what the whole run read (BigQuery bills by the bytes a query reads)
            **({"bytes_processed": sum(billed)} if billed is not None else {}),
            **({"months": months_table(rows)} if len(rows) > 1 else {}),
        }
        yield MaterializeResult(metadata=metadata)

    return bronze_tripdata


