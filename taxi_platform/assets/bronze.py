"""bronze/<colour>_tripdata: each month as landed, every row of the file as text, plus filename."""


from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from taxi_platform.assets.common import (
    INGEST_BACKFILL_POLICY,
    TRANSIENT_RETRY_POLICY,
    WAREHOUSE_POOL,
    bad_input_fails_once,
    column_schema,
    months_of,
    months_table,
)
from taxi_platform.assets.lake import lake_key
from taxi_platform.assets.unchanged import LOADS, loads_metadata, unchanged_load, warehouse_identity
from taxi_platform.errors import BadInputError
from taxi_platform.files import check_header, read_header
from taxi_platform.partitions import monthly_partitions
from taxi_platform.lake import LakeResource
from taxi_platform.warehouse import WarehouseResource
from taxi_platform.schemas import SCHEMAS, TripSchema
from taxi_platform.settings import Settings


def build_bronze_asset(schema: TripSchema):
    table = f"bronze.{schema.table}"

    @asset(
        key=AssetKey(["bronze", schema.table]),
        deps=[AssetKey(["lake", schema.table])],
        group_name="bronze",
        partitions_def=monthly_partitions,
        backfill_policy=INGEST_BACKFILL_POLICY,
        retry_policy=TRANSIENT_RETRY_POLICY,
        pool=WAREHOUSE_POOL,
        kinds={"duckdb", "table"},
        tags={"colour": schema.colour, "layer": "bronze"},
        owners=["team:data-platform"],
        metadata={"dagster/table_name": table},
        description=(
            f"The {schema.colour} month as landed, in the warehouse table `{table}`: every row "
            "of the file, the file's columns (names lower-cased) as text, plus `filename`. "
            "Before loading, the header is checked against the column contract "
            "(`taxi_platform/schemas.py`): a renamed, missing or extra column fails the month "
            "and leaves every loaded month as it was. A month's rows are replaced in one "
            "transaction, never appended. A month whose lake object is the one already loaded, "
            "with its rows all there, is not loaded again (`unchanged: true`; the run tag "
            "`taxi/reload=true` forces it)."
        ),
    )
    def bronze_tripdata(context: AssetExecutionContext, lake: LakeResource,
                        warehouse: WarehouseResource) -> MaterializeResult:
        max_fraction = Settings.from_env().max_quarantine_fraction
        rows, loads = [], {}
        for month in months_of(context):
            filename = schema.filename(month)
            obj = lake.stat(lake_key(schema, month))
            with bad_input_fails_once():
                if obj is None:
                    raise BadInputError(
                        f"{filename} (partition {month}) is not in the lake: materialize "
                        f"lake/{schema.table} for {month} first (select '*bronze/{schema.table}' "
                        "to run every upstream layer in the same run).", file=filename, partition=month)
            load = unchanged_load(context, context.asset_key, month, filename, warehouse, obj.sha256,
                                  counts={"rows": table})
            unchanged = load is not None
            if unchanged:
                context.log.info(f"{filename}: unchanged ({load['rows']:,} rows in {table}, the same "
                                 f"lake object sha256 {obj.sha256[:12]}…): not loaded again")
            else:
                with bad_input_fails_once(), lake.local_copy(lake_key(schema, month)) as path:
                    check_header(read_header(path, file=filename, partition=month), schema,
                                 file=filename, partition=month)
                    result = warehouse.load_bronze(schema, month, filename, str(path), max_fraction)
                load = {"rows": result.rows, "sha256": obj.sha256, "warehouse": warehouse_identity(warehouse)}
                context.log.info(f"{filename}: {result.rows:,} rows landed in {table}")
            loads[filename] = load
            rows.append({"month": month, "file": filename, "rows": load["rows"], "unchanged": unchanged})
        metadata = {
            "dagster/row_count": sum(r["rows"] for r in rows),
            "dagster/column_schema": column_schema(
                [(c, "VARCHAR", "as in the file") for c in schema.sql_names]
                + [("filename", "VARCHAR", "the source file")]),
            "table": table,
            "unchanged": all(r["unchanged"] for r in rows),
            LOADS: loads_metadata(loads),
        }
        if len(rows) == 1:
            metadata["file"] = rows[0]["file"]
            metadata["preview"] = MetadataValue.md(warehouse.preview_markdown(table, rows[0]["file"]))
        else:
            metadata["months"] = months_table(rows)
        return MaterializeResult(metadata=metadata)

    return bronze_tripdata


bronze_assets = [build_bronze_asset(schema) for schema in SCHEMAS.values()]
