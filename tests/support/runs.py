"""Helpers for tests that run the ingest assets through Dagster for real."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, materialize

from taxi_platform.assets import ingest_assets
from taxi_platform.resources import resources_from_env
from taxi_platform.settings import Settings


def run_months(instance: DagsterInstance, month: str, selection=None):
    """Materialize the ingest assets (or ``selection``) for one month; returns the result."""
    return materialize(selection or ingest_assets, partition_key=month, instance=instance,
                       resources=resources_from_env(), raise_on_error=False)


def failure_messages(result) -> list[str]:
    return [event.event_specific_data.error.message
            for event in result.all_events if event.event_type == DagsterEventType.STEP_FAILURE]


def table_digest(table: str, filename: str | None = None) -> tuple[int, str]:
    """(rows, md5 over all rows in a fixed order): equal digests mean equal content."""
    from taxi_platform.resources import build_warehouse

    warehouse = build_warehouse(Settings.from_env())
    schema, _, name = table.partition(".")
    exists = warehouse.query("SELECT count(*) FROM information_schema.tables "
                             "WHERE table_schema = ? AND table_name = ?", [schema, name])[0][0]
    where = "WHERE filename = ?" if filename else ""
    rows = warehouse.query(f"SELECT * FROM {table} {where} ORDER BY ALL",
                           [filename] if filename else []) if exists else []  # absent = empty
    return len(rows), hashlib.md5(repr(rows).encode()).hexdigest()


def rewrite_csv(src: Path, dst: Path, edit) -> Path:
    """Write ``dst`` (gzipped) from ``src``'s lines after ``edit(list_of_lines)``; CRLF kept."""
    lines = gzip.decompress(Path(src).read_bytes()).decode().split("\r\n")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(dst, "wt", newline="") as out:
        out.write("\r\n".join(edit(lines)))
    return dst
