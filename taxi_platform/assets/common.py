"""What every ingestion layer shares: the retry policy, clear failures, per-month loops."""

from __future__ import annotations

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    BackfillPolicy,
    MetadataValue,
    TableColumn,
    TableRecord,
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


def _cell(value):
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _table_type(values: list) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {bool}:
        return "bool"
    if kinds and kinds <= {int}:
        return "int"
    if kinds and kinds <= {int, float}:
        return "float"
    return "string"


def typed_table(names: list[str], rows: list[tuple]) -> MetadataValue:
    """Rows as a table the UI can sort (``MetadataValue.table`` with its ``TableSchema``)."""
    cells = [[_cell(v) for v in row] for row in rows]
    schema = TableSchema(columns=[TableColumn(name, _table_type([row[i] for row in cells]))
                                  for i, name in enumerate(names)])
    return MetadataValue.table(records=[TableRecord(dict(zip(names, row, strict=True))) for row in cells],
                               schema=schema)


def months_table(rows: list[dict]) -> MetadataValue:
    """A table of per-month figures, for steps that processed several months."""
    names = list(rows[0]) if rows else ["month"]
    return typed_table(names, [tuple(r[n] for n in names) for r in rows])


def report_month(context: AssetExecutionContext, month: str, metadata: dict) -> None:
    """The month's own figures on the month's own materialization. A run of many months (a
    single-run backfill, ``--partition-range``) records one materialization per month; what the
    step returns goes on all of them, so the per-month figures go here and win over it."""
    context.add_asset_metadata(metadata, partition_key=month)


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
    """A few rows of the month in ``table``, as a typed table."""
    names, rows = warehouse.preview(table, filename)
    return typed_table(list(names), [tuple(row) for row in rows])
