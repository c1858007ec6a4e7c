"""raw/<colour>_tripdata: the month's published file, downloaded to local disk."""

import json

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from taxi_platform.assets.common import months_of, months_table, report_month, tag_run
from taxi_platform.assets.factory import ingest_asset
from taxi_platform.schemas import CSV_GZ, PARQUET, TripSchema
from taxi_platform.sources import TaxiSourceResource

# Run tag set by the landing sensor: the run loads this file (a local path or a gs:// object)
# instead of downloading.
LANDED_FILE_TAG = "taxi/landed_file"
FILES = "files"  # metadata key: {month: the file's name}, which the next layer takes


def landed_file_for(tags, schema: TripSchema, month: str) -> str | None:
    """The landed file a run was asked to load for ``month``, if its tags name one for it."""
    value = tags.get(LANDED_FILE_TAG)
    if value and value.rsplit("/", 1)[-1].startswith(f"{schema.colour}_tripdata_{month}."):
        return value
    return None


def published_name(schema: TripSchema, month: str, landed: str | None, source: TaxiSourceResource) -> str:
    """The month's file name: the source's, or for a landed file the one its format has (a
    landed ``.csv`` is kept gzipped under the ``.csv.gz`` name)."""
    if landed:
        return schema.filename(month, PARQUET if landed.endswith(PARQUET) else CSV_GZ)
    return source.filename(schema.colour, month)


def build_raw_asset(schema: TripSchema, source: str | None = None):
    @ingest_asset(
        schema, "raw", source=source, kinds={"csv", "parquet"},
        description=(
            f"The {schema.colour} taxi trips of one month as published: "
            f"`{schema.colour}_tripdata_YYYY-MM.csv.gz` from the CSV mirror (TAXI_SOURCE=mirror, "
            "TAXI_SOURCE_URL) or `.parquet` from the TLC (TAXI_SOURCE=tlc, TAXI_TLC_URL), downloaded to "
            "`<TAXI_DATA_DIR>/raw/` by a streaming download that resumes a cut transfer, honours "
            "Retry-After, ends within TAXI_DOWNLOAD_DEADLINE_SECONDS and lands the file only when "
            "complete. A 404 fails at once (the month is not published); a file that is not data (an "
            "HTML page) is refused; a CSV sent uncompressed is kept gzipped. A run started by the "
            "landing sensor (tag `taxi/landed_file`) copies the landed file instead. "
            "Metadata: URL, bytes, sha256."),
    )
    def raw_tripdata(context: AssetExecutionContext, source: TaxiSourceResource) -> MaterializeResult:
        rows = []
        for month in months_of(context):
            landed = landed_file_for(context.run.tags, schema, month)
            filename = published_name(schema, month, landed, source)
            got = (source.copy_landed(landed, schema.colour, filename, month) if landed
                   else source.download(schema.colour, filename, month))
            # Sidecar checksum: the lake step trusts it instead of hashing the file again.
            got.path.with_name(got.path.name + ".json").write_text(
                json.dumps({"sha256": got.sha256, "size": got.size, "url": got.url}))
            context.log.info(f"{filename}: {got.size:,} bytes from {got.url} (sha256 {got.sha256[:12]}…)")
            rows.append({"month": month, "file": filename, "bytes": got.size,
                         "sha256": got.sha256, "url": got.url, "path": str(got.path)})
        tag_run(context, schema.colour, [r["file"] for r in rows])
        for r in rows:
            report_month(context, r["month"], {
                "url": MetadataValue.url(r["url"]) if r["url"].startswith("http") else r["url"],
                "bytes": r["bytes"], "sha256": r["sha256"], "path": MetadataValue.path(r["path"]),
                "file": r["file"], FILES: MetadataValue.json({r["month"]: r["file"]})})
        metadata = {} if len(rows) == 1 else {
            "months": len(rows),
            "files_table": months_table([{k: r[k] for k in ("month", "file", "bytes", "sha256")} for r in rows])}
        return MaterializeResult(metadata=metadata)

    return raw_tripdata


