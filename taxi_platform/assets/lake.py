"""lake/<colour>_tripdata: the month's file kept as an object in the data lake."""


import json
import os

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from taxi_platform.assets.common import months_of, months_table, report_month, upstream_file
from taxi_platform.assets.factory import ingest_asset, ingest_key
from taxi_platform.errors import BadInputError
from taxi_platform.lake import LakeResource
from taxi_platform.schemas import TripSchema
from taxi_platform.sources import TaxiSourceResource


def lake_key(schema: TripSchema, filename: str) -> str:
    """The month's object in the lake: ``<colour>/<file>``."""
    return f"{schema.colour}/{filename}"


def build_lake_asset(schema: TripSchema, source: str | None = None):
    @ingest_asset(
        schema, "lake", source=source, kinds={"file"},
        description=(
            f"The {schema.colour} month's file as an object in the data lake "
            f"(`<lake>/{schema.colour}/{schema.colour}_tripdata_YYYY-MM.csv.gz` or `.parquet`; a local "
            "folder by default, a GCS bucket in the cloud). An object that already holds the same "
            "bytes (same sha256) is not rewritten. Metadata: URI, bytes, sha256, unchanged."),
    )
    def lake_tripdata(context: AssetExecutionContext, source: TaxiSourceResource,
                      lake: LakeResource) -> MaterializeResult:
        rows = []
        for month in months_of(context):
            filename = upstream_file(context, ingest_key("raw", schema), month,
                                     source.filename(schema.colour, month))
            raw_path = source.local_path(schema.colour, filename)
            if not raw_path.is_file():
                raise BadInputError(
                    f"{filename} (partition {month}) is not on local disk at {raw_path}: "
                    f"materialize raw/{schema.table} for {month} first.", file=filename, partition=month)
            sidecar = raw_path.with_name(raw_path.name + ".json")
            sha256 = None
            if sidecar.is_file():
                info = json.loads(sidecar.read_text())
                if info.get("size") == os.path.getsize(raw_path):
                    sha256 = info["sha256"]
            obj = lake.put(raw_path, lake_key(schema, filename), sha256=sha256)
            context.log.info(f"{filename}: {'unchanged at' if obj.unchanged else 'stored as'} {obj.uri}")
            rows.append({"month": month, "file": filename, "uri": obj.uri, "bytes": obj.size,
                         "sha256": obj.sha256, "unchanged": obj.unchanged})
        for r in rows:
            report_month(context, r["month"], {
                "uri": MetadataValue.url(r["uri"]), "bytes": r["bytes"], "sha256": r["sha256"],
                "unchanged": r["unchanged"], "files": MetadataValue.json({r["month"]: r["file"]})})
        metadata = {} if len(rows) == 1 else {
            "months": len(rows),
            "objects": months_table([{k: v for k, v in r.items() if k != "file"} for r in rows])}
        return MaterializeResult(metadata=metadata)

    return lake_tripdata


