"""Skipping a month whose reload would change nothing.

Re-running a month (a retry, a backfill over loaded months, a schedule that fires twice) used to
reload the whole file into bronze and rebuild silver. Bronze and silver now record, per file, what
they loaded in their materialization metadata (``loads``: the lake object's sha256, the warehouse,
the row counts). A month is skipped when all of these hold, and reloaded otherwise:

- the lake object is the one that was loaded (same sha256: the lake notices an unchanged file);
- the table is in the same warehouse and still holds exactly the rows that load left for the
  file (a count by ``filename``: the proof that the month is complete, not a guess);
- silver only: no other month of the table was written by another run since, because loading an
  earlier month can move ids out of this one (an id belongs to its earliest file);
- the run does not carry the tag ``taxi/reload=true`` (UI: Materialize → add tag; or set
  ``TAXI_FORCE_RELOAD=1``), which forces the reload.

A skipped month is re-materialized with the recorded figures and ``unchanged: true``, so the
partition stays green and its history shows the re-run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetRecordsFilter, MetadataValue

from taxi_platform.warehouse import WarehouseResource

RELOAD_TAG = "taxi/reload"
LOADS = "loads"  # metadata key: {filename: {...what the load left...}}


def forced_reload(context: AssetExecutionContext, warehouse: WarehouseResource) -> bool:
    """The run's tag ``taxi/reload``, or the warehouse's ``force_reload`` (TAXI_FORCE_RELOAD)."""
    return context.run.tags.get(RELOAD_TAG, "").lower() in ("1", "true", "yes") or warehouse.force_reload


def loads_metadata(loads: Mapping[str, Mapping[str, Any]]) -> MetadataValue:
    return MetadataValue.json({name: dict(load) for name, load in loads.items()})


def last_load(context: AssetExecutionContext, key: AssetKey, month: str, filename: str):
    """(what the last materialization of ``month`` recorded for ``filename``, its run id), or None."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[month]), limit=1).records
    if not records:
        return None
    metadata = records[0].asset_materialization.metadata if records[0].asset_materialization else {}
    loads = metadata.get(LOADS)
    load = (loads.value or {}).get(filename) if loads is not None else None
    return (load, records[0].run_id) if load else None


def written_since_by_another_run(context: AssetExecutionContext, key: AssetKey, run_id: str) -> bool:
    """True when the newest materialization of any month of ``key`` comes from another run."""
    records = context.instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1).records
    return bool(records) and records[0].run_id != run_id


def rows_of_file(warehouse: WarehouseResource, table: str, filename: str) -> int | None:
    """Rows of ``filename`` in ``table``; None when the table cannot be read (e.g. not there)."""
    try:
        return warehouse.query(f"SELECT count(*) FROM {table} WHERE filename = ?", [filename])[0][0]
    except Exception:  # noqa: BLE001  a missing table, another warehouse: then reload
        return None


def unchanged_load(context: AssetExecutionContext, key: AssetKey, month: str, filename: str,
                   warehouse: WarehouseResource, sha256: str | None,
                   counts: Mapping[str, str], other_months_matter: bool = False) -> dict | None:
    """The recorded load of ``filename`` when reloading it would change nothing, else None.
    ``counts``: {recorded figure: table} whose rows of the file must still number that figure."""
    if sha256 is None or forced_reload(context, warehouse):
        return None
    found = last_load(context, key, month, filename)
    if found is None:
        return None
    load, run_id = found
    if load.get("sha256") != sha256 or load.get("warehouse") != warehouse.identity():
        return None
    if other_months_matter and written_since_by_another_run(context, key, run_id):
        return None
    for figure, table in counts.items():
        if rows_of_file(warehouse, table, filename) != load.get(figure):
            return None
    return dict(load)
