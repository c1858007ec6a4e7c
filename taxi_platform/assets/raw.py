"""raw/<colour>_tripdata: the month's published CSV file, downloaded to local disk."""


import json

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from taxi_platform.assets.common import (
    INGEST_BACKFILL_POLICY,
    TRANSIENT_RETRY_POLICY,
    bad_input_fails_once,
    months_of,
    months_table,
    tag_run,
)
from taxi_platform.partitions import monthly_partitions
from taxi_platform.sources import TaxiSourceResource
from taxi_platform.schemas import SCHEMAS, TripSchema

# Run tag set by the landing sensor: the run loads this file (a local path or a gs:// object)
# instead of downloading.
LANDED_FILE_TAG = "taxi/landed_file"


def landed_file_for(tags, schema: TripSchema, month: str) -> str | None:
    """The landed file a run was asked to load for ``month``, if its tags name one for it."""
    value = tags.get(LANDED_FILE_TAG)
    if value and value.rsplit("/", 1)[-1].startswith(f"{schema.colour}_tripdata_{month}.csv"):
        return value
    return None


def build_raw_asset(schema: TripSchema):
    @asset(
        key=AssetKey(["raw", schema.table]),
        group_name="raw",
        partitions_def=monthly_partitions,
        backfill_policy=INGEST_BACKFILL_POLICY,
        retry_policy=TRANSIENT_RETRY_POLICY,
        kinds={"csv"},
        tags={"colour": schema.colour, "layer": "raw"},
        owners=["team:data-platform"],
        description=(
            f"The {schema.colour} taxi trips of one month as published: "
            f"`{schema.colour}_tripdata_YYYY-MM.csv.gz`, downloaded from TAXI_SOURCE_URL to "
            "`<TAXI_DATA_DIR>/raw/` by a streaming download that lands the file only when "
            "complete. Connection errors and 5xx answers are retried with backoff; a 404 "
            "fails at once (the month is not published). A run started by the landing sensor "
            "(tag `taxi/landed_file`) copies the landed file instead. Metadata: URL, bytes, sha256."
        ),
    )
    def raw_tripdata(context: AssetExecutionContext, source: TaxiSourceResource) -> MaterializeResult:
        months = months_of(context)
        filenames = [schema.filename(m) for m in months]
        tag_run(context, schema.colour, filenames)
        rows = []
        for month, filename in zip(months, filenames):
            landed = landed_file_for(context.run.tags, schema, month)
            with bad_input_fails_once():
                got = (source.copy_landed(landed, schema.colour, filename, month) if landed
                       else source.download(schema.colour, filename, month))
            # Sidecar checksum: the lake step trusts it instead of hashing the file again.
            got.path.with_name(got.path.name + ".json").write_text(
                json.dumps({"sha256": got.sha256, "size": got.size, "url": got.url}))
            context.log.info(f"{filename}: {got.size:,} bytes from {got.url} (sha256 {got.sha256[:12]}…)")
            rows.append({"month": month, "file": filename, "bytes": got.size,
                         "sha256": got.sha256, "url": got.url, "path": str(got.path)})
        if len(rows) == 1:
            (r,) = rows
            metadata = {"url": MetadataValue.url(r["url"]) if r["url"].startswith("http") else r["url"],
                        "bytes": r["bytes"], "sha256": r["sha256"], "path": MetadataValue.path(r["path"]),
                        "file": r["file"]}
        else:
            metadata = {"bytes": sum(r["bytes"] for r in rows), "months": len(rows),
                        "files": months_table([{k: r[k] for k in ("month", "file", "bytes", "sha256")} for r in rows])}
        return MaterializeResult(metadata=metadata)

    return raw_tripdata


raw_assets = [build_raw_asset(schema) for schema in SCHEMAS.values()]
