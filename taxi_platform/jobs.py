"""One partitioned job per cab colour: everything that colour's monthly partitions feed.

A colour's job selects every monthly-partitioned asset tagged ``colour: <colour>`` (raw, lake,
bronze, silver, and any dbt model tagged the same way with the same partitions), so the job
grows with the asset graph and never mixes in an unpartitioned asset, which Dagster refuses in
a partitioned job. Asset checks on the selected assets run with them.

The jobs run their steps in one process (``in_process_executor``): a colour's month is a chain
(raw -> lake -> bronze -> silver, checks beside), so separate step processes would buy no
parallelism, only a Python start-up and code import per step. Pools, retry policies and run
retries work the same; a crashed run worker is retried as a whole by the instance (run_retries).

Runs carry ``taxi: <colour>`` (Kestra's ``taxi`` label). Backfill runs carry Dagster's own
``dagster/backfill: <backfill id>`` tag, which is this platform's ``backfill: true``:
:func:`is_backfill_run` reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    MetadataValue,
    MonthlyPartitionsDefinition,
    Output,
    define_asset_job,
    in_process_executor,
    job,
    op,
)

from taxi_platform.lake import LakeResource
from taxi_platform.schemas import COLOURS
from taxi_platform.warehouse import WarehouseResource

COLOUR_TAG = "taxi"  # run tag with the colour, as the Kestra flows' `taxi` label
TRIGGER_TAG = "taxi/trigger"  # schedule, landing, publication: what asked for the run
BACKFILL_TAG = "dagster/backfill"  # set by Dagster on every backfill run (UI, CLI, GraphQL)


def job_name(colour: str) -> str:
    return f"{colour}_tripdata_job"


def colour_assets(assets: Iterable[object], colour: str) -> tuple[list[AssetKey], object]:
    """Keys of the monthly-partitioned assets tagged ``colour: <colour>``, in definition order,
    and their partitions (the colour's months at the source)."""
    keys, partitions = [], None
    for assets_def in assets:
        if not isinstance(assets_def, AssetsDefinition):
            continue
        for spec in assets_def.specs:
            if spec.tags.get("colour") == colour and isinstance(spec.partitions_def, MonthlyPartitionsDefinition):
                keys.append(spec.key)
                partitions = partitions or spec.partitions_def
    return keys, partitions


def build_colour_jobs(assets: Iterable[object]) -> dict:
    """``{colour: job}`` for every colour, each selecting that colour's monthly assets."""
    assets = list(assets)
    jobs = {}
    for colour in COLOURS:
        keys, partitions = colour_assets(assets, colour)
        if not keys:
            raise ValueError(f"no monthly-partitioned asset is tagged colour={colour!r}")
        jobs[colour] = define_asset_job(
            name=job_name(colour),
            selection=AssetSelection.assets(*keys),
            partitions_def=partitions,
            tags={COLOUR_TAG: colour},
            executor_def=in_process_executor,
            description=(
                f"Every monthly {colour} asset for one month (or a range, in a single-run "
                f"backfill): {', '.join(k.to_user_string() for k in keys)}. Scheduled on the 1st "
                "for the month that just ended; also run by the landing and publication sensors "
                "and by `dagster job backfill` (one run per month)."),
        )
    return jobs


def is_backfill_run(tags: Mapping[str, str]) -> bool:
    """True for a run launched by a backfill (Dagster tags it ``dagster/backfill: <id>``)."""
    return BACKFILL_TAG in tags


@op(description="Create the lake's bucket (or folder) and the warehouse's datasets if missing.")
def set_up_lake_and_warehouse(context, lake: LakeResource,
                              warehouse: WarehouseResource):
    done = [*lake.set_up(), *warehouse.set_up()]
    for line in done:
        context.log.info(line)
    yield Output(None, metadata={"done": MetadataValue.md("\n".join(f"- {line}" for line in done))})


@job(description=("Create the lake's bucket and the warehouse's datasets when missing (the old "
                  "07_gcp_setup flow), in GCP_LOCATION; safe to run again. Not needed for the "
                  "embedded default. Run it once before the first load into GCS + BigQuery: "
                  "UI → Jobs → setup_job, or `dagster job execute -m taxi_platform.definitions -j setup_job`."))
def setup_job():
    set_up_lake_and_warehouse()
