"""The one factory of the ingest assets (raw, lake, bronze, silver): what their ``@asset``
decorators share, and the loop every one of them runs over the months of a run.

Every ingest asset is ``<layer>/<colour>_tripdata``, partitioned by the colour's months at the
source, in the group of its layer, tagged with its colour and layer, retried for transient
trouble only, single-run in backfills; the ones that write the warehouse take a slot of the pool
``taxi_warehouse``. A run may carry many months (``--partition-range``, single-run backfills);
each month is done (and written in its own transaction) in turn.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence

from dagster import AssetCheckSpec, AssetKey, CodeReferencesMetadataValue, LocalFileCodeReference, asset

from taxi_platform import dbt_server
from taxi_platform.assets.common import INGEST_BACKFILL_POLICY
from taxi_platform.freshness import silver_freshness_policy
from taxi_platform.partitions import partitions_for
from taxi_platform.resources import configured_warehouse, table_metadata
from taxi_platform.schemas import TripSchema
from taxi_platform.steps import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL, retried_only_if_transient, run_inside

LAYERS = ("raw", "lake", "bronze", "silver")


def ingest_key(layer: str, schema: TripSchema) -> AssetKey:
    return AssetKey([layer, schema.table])


def ingest_asset(schema: TripSchema, layer: str, *, description: str, kinds: set[str] | None = None,
                 check_specs: Sequence[AssetCheckSpec] = (), source: str | None = None) -> Callable:
    """The ``@asset`` decorator of ``<layer>/<colour>_tripdata`` (its upstream is the layer before),
    partitioned by the colour's months at ``source`` (TAXI_SOURCE when not given). The layers in
    the warehouse (bronze, silver) write its table ``<layer>.<colour>_tripdata``: they take the
    warehouse pool, and show the configured warehouse's kind, table name and console link."""
    before = LAYERS[LAYERS.index(layer) - 1] if layer != LAYERS[0] else None
    writes_warehouse = layer in ("bronze", "silver")
    metadata = {}
    if writes_warehouse:
        warehouse_now = configured_warehouse()
        kinds = {warehouse_now.kind, "table"}
        metadata = table_metadata(warehouse_now, f"{layer}.{schema.table}")

    def decorate(compute: Callable):
        return asset(
            key=ingest_key(layer, schema),
            deps=[ingest_key(before, schema)] if before else None,
            group_name=layer,
            partitions_def=partitions_for(schema.colour, source),
            backfill_policy=INGEST_BACKFILL_POLICY,
            retry_policy=TRANSIENT_RETRY_POLICY,
            pool=WAREHOUSE_POOL if writes_warehouse else None,
            kinds=kinds,
            tags={"colour": schema.colour, "layer": layer},
            owners=["team:data-platform"],
            metadata={**metadata, "dagster/code_references": code_reference(compute)},
            check_specs=list(check_specs) or None,
            description=description,
            # silver: a new month is due at every deadline (taxi_platform/freshness.py)
            freshness_policy=silver_freshness_policy(source) if layer == "silver" else None,
        )(retried_only_if_transient(dbt_started_early(compute)))

    return decorate


def dbt_started_early(compute: Callable) -> Callable:
    """``compute`` starting the run's dbt fork server first (taxi_platform/dbt_server.py: it
    returns at once) when the run also selects assets beyond the ingest layers (the dbt models
    come after them), so that dbt is imported while the month loads, not when its first dbt step
    starts."""
    return run_inside(compute, _dbt_server_started_if_selected)


@contextlib.contextmanager
def _dbt_server_started_if_selected(context, *args, **kwargs) -> Iterator[None]:
    try:
        selection = context.job_def.asset_layer.selected_asset_keys
        in_process = "in_process" in context.job_def.executor_def.name  # or execute_in_process_executor
    except AttributeError:  # not run as a Dagster step (a direct call in a test)
        selection, in_process = (), False
    # (with a process per step, a server started here would end with this step's process)
    if in_process and any(key.path[0] not in LAYERS for key in selection):
        from taxi_platform.dbt_project import partial_parse_states

        try:
            warehouse = context.resources.warehouse
        except Exception:  # noqa: BLE001  a step without the resource: the one the environment configures
            warehouse = configured_warehouse()
        dbt_server.start(parse_ahead=partial_parse_states(warehouse.dbt_env()))
    yield


def code_reference(compute: Callable) -> CodeReferencesMetadataValue:
    """Where the asset's own function is (its layer module, not the factory's wrappers): the UI's
    "Open source" link."""
    compute = inspect.unwrap(compute)
    return CodeReferencesMetadataValue(code_references=[LocalFileCodeReference(
        file_path=inspect.getsourcefile(compute), line_number=inspect.getsourcelines(compute)[1])])
