"""What every ingestion layer shares: the retry policy, clear failures, per-month loops."""

from __future__ import annotations

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    BackfillPolicy,
    MetadataValue,
    TableColumn,
    TableSchema,
)

# One run may carry many months (`--partition-range`, single-run backfills); every month is
# still written in its own transaction.
INGEST_BACKFILL_POLICY = BackfillPolicy.single_run()


def months_of(context: AssetExecutionContext) -> list[str]:
    """The partition keys this step must process, in order (one, or a range)."""
    return list(context.partition_keys)


def column_schema(columns: list[tuple[str, str, str]]) -> TableSchema:
    return TableSchema(columns=[TableColumn(name, type_, description) for name, type_, description in columns])


def months_table(rows: list[dict]) -> MetadataValue:
    """A markdown table of per-month figures, for steps that processed several months."""
    if not rows:
        return MetadataValue.md("")
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(str(r[n]) for n in names) + " |" for r in rows]
    return MetadataValue.md("\n".join(lines))


def tag_run(context: AssetExecutionContext, colour: str, filenames: list[str]) -> None:
    """Label the run with the colour and file(s) it loads, as the Kestra flows did."""
    value = filenames[0] if len(filenames) == 1 else f"{filenames[0]} .. {filenames[-1]}"
    context.instance.add_run_tags(context.run_id, {f"taxi/{colour}": value})


def upstream_file(context: AssetExecutionContext, upstream: AssetKey, month: str, default: str) -> str:
    """The month's file name the upstream layer last materialized (its ``files`` metadata: a month
    may have come from either source, or from a landed file), else ``default``."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=upstream, asset_partitions=[month]), limit=1).records
    event = records[0].asset_materialization if records else None
    files = event.metadata.get("files") if event else None
    value = getattr(files, "value", None)
    return value.get(month, default) if isinstance(value, dict) else default


def preview_table(warehouse, table: str, filename: str) -> MetadataValue:
    """A few rows of the month in ``table`` as a Markdown table."""
    names, rows = warehouse.preview(table, filename)
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))
