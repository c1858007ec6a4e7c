"""lake/<colour>_tripdata: the month's file kept as an object in the data lake."""


import json
import os

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from taxi_platform.assets.common import (
    INGEST_BACKFILL_POLICY,
    TRANSIENT_RETRY_POLICY,
    bad_input_fails_once,
    months_of,
    months_table,
)
from taxi_platform.errors import BadInputError
from taxi_platform.partitions import monthly_partitions
from taxi_platform.lake import LakeResource
from taxi_platform.sources import TaxiSourceResource
from taxi_platform.schemas import SCHEMAS, TripSchema


def lake_key(schema: TripSchema, month: str) -> str:
    return f"{schema.colour}/{schema.filename(month)}"


def build_lake_asset(schema: TripSchema):
    @asset(
        key=AssetKey(["lake", schema.table]),
        deps=[AssetKey(["raw", schema.table])],
        group_name="lake",
        partitions_def=monthly_partitions,
        backfill_policy=INGEST_BACKFILL_POLICY,
        retry_policy=TRANSIENT_RETRY_POLICY,
        kinds={"file"},
        tags={"colour": schema.colour, "layer": "lake"},
        owners=["team:data-platform"],
        description=(
            f"The {schema.colour} month's file as an object in the data lake "
            f"(`<lake>/{schema.colour}/{schema.colour}_tripdata_YYYY-MM.csv.gz`; a local folder "
            "by default, a GCS bucket in the cloud). An object that already holds the same "
            "bytes (same sha256) is not rewritten. Metadata: URI, bytes, sha256, unchanged."
        ),
    )
    def lake_tripdata(context: AssetExecutionContext, source: TaxiSourceResource,
                      lake: LakeResource) -> MaterializeResult:
        rows = []
        for month in months_of(context):
            filename = schema.filename(month)
            raw_path = source.local_path(schema.colour, filename)
            with bad_input_fails_once():
                if not raw_path.is_file():
                    raise BadInputError(
                        f"{filename} (partition {month}) is not on local disk at {raw_path}: "
                        f"materialize raw/{schema.table} for {month} first.",
                        file=filename, partition=month)
            sidecar = raw_path.with_name(raw_path.name + ".json")
            sha256 = None
            if sidecar.is_file():
                info = json.loads(sidecar.read_text())
                if info.get("size") == os.path.getsize(raw_path):
                    sha256 = info["sha256"]
            obj = lake.put(raw_path, lake_key(schema, month), sha256=sha256)
            context.log.info(f"{filename}: {'unchanged at' if obj.unchanged else 'stored as'} {obj.uri}")
            rows.append({"month": month, "uri": obj.uri, "bytes": obj.size, "sha256": obj.sha256,
                         "unchanged": obj.unchanged})
        if len(rows) == 1:
            (r,) = rows
            metadata = {"uri": MetadataValue.url(r["uri"]), "bytes": r["bytes"],
                        "sha256": r["sha256"], "unchanged": r["unchanged"]}
        else:
            metadata = {"bytes": sum(r["bytes"] for r in rows), "months": len(rows),
                        "objects": months_table(rows)}
        return MaterializeResult(metadata=metadata)

    return lake_tripdata


lake_assets = [build_lake_asset(schema) for schema in SCHEMAS.values()]
