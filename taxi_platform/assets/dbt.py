"""dbt models as assets: staging views, gold (fct_trips, dim_zones) and the marts, downstream of
silver in one lineage graph; dbt tests are asset checks (severity error: blocking).

Two ``@dbt_assets`` definitions, each a step of its own in a run; each asset keeps the
partitioning its model has:

| definition | dbt selection | assets | partitions |
|---|---|---|---|
| ``dbt_reference_assets`` | seeds, ``models/staging``, unpartitioned ``models/gold`` | ``seeds/*``, ``staging/stg_*``, ``gold/dim_zones`` | none: nothing here depends on the month |
| ``dbt_trip_and_mart_assets`` | ``tag:partitioned``, ``models/marts`` | ``gold/fct_trips`` | monthly, ``BackfillPolicy.single_run()`` |
| | | ``marts/dm_monthly_zone_revenue`` | none: rebuilt whole from fct_trips |

A step runs what the run selects of its definition in one ``dbt build`` (dagster-dbt turns the
selection into dbt's ``--select``), so fct_trips and the mart cost one dbt start, parse and set of
artifacts, not two (about 0.6 s a run). dbt orders them and skips the mart when fct_trips or one
of its tests fails, as a separate mart step did. Dagster takes assets with different partitions
in one definition when it can be subset (dagster-dbt's always can). The reference models stay
apart: a definition has one partition mapping per upstream asset, and fct_trips' mapping of
silver (its months, ``SILVER_MONTHS``) fails a step where the unpartitioned staging views read
silver without fct_trips (a run that builds only the views).

A partition run of ``gold/fct_trips`` passes the partition time window to dbt as
``TAXI_DBT_MIN_DATE``/``TAXI_DBT_MAX_DATE`` (the vars ``min_date``/``max_date`` by hand); the
model replaces exactly the rows of those months' files in one transaction. The mart is a full
recomputation over fct_trips on every run (cheap next to the load: see the README's dbt
section), so it never depends on the order months were loaded in.

dbt runs through dagster-dbt's ``DbtCliResource``, the ``dbt`` resource of the Definitions
(taxi_platform/dbt_project.py). Every invocation runs inside ``warehouse.exclusive()`` (DuckDB
takes one writer process at a time) with the warehouse's settings in its environment
(``warehouse.dbt_env()``: TAXI_DUCKDB_PATH, the PG* variables…), writes its artifacts to a
temporary folder removed when the step ends, and starts from the partial-parse state the last
invocation with the same profile left.

Row counts, column schemas and column lineage (the one place this differs by backend:
``warehouse.held_by_dbt_while_it_runs``):

- PostgreSQL and BigQuery: dagster-dbt's ``fetch_row_counts()`` and ``fetch_column_metadata()``
  query each model through dbt's adapter as dbt's events stream, looked up in the run's own
  manifest (the assets' manifest is parsed for DuckDB: its relation names are DuckDB's);
- DuckDB: dbt's process holds the file while it runs, so the events are taken once dbt has
  exited and the same figures read with this process's connection (the lineage with the function
  ``fetch_column_metadata()`` uses).

A partitioned model's ``dagster/row_count`` is then the rows of the run's months (its
``table_row_count`` the whole table), and each month of a range gets its own.
"""


import contextlib
import copy
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    BackfillPolicy,
    DefaultSensorStatus,
    Failure,
    MetadataValue,
    Output,
    TableColumn,
    TableSchema,
    TimeWindowPartitionMapping,
    get_dagster_logger,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.core.dbt_event_iterator import DbtEventIterator

from taxi_platform import dbt_server
from taxi_platform.dbt_project import (
    WINDOW_VARIABLES,
    TaxiDbtCliResource,
    dbt_environment,
    keep_partial_parse,
    partition_filenames,
    prepare_manifest,
    restore_partial_parse,
    taxi_dbt_project,
)
from taxi_platform.dbt_server import MANIFEST_AFTER_PARSE_VARIABLE
from taxi_platform.errors import is_transient
from taxi_platform.freshness import mart_freshness_policy
from taxi_platform.partitions import all_colours_partitions
from taxi_platform.resources import configured_warehouse
from taxi_platform.schemas import SCHEMAS
from taxi_platform.secrets import redact
from taxi_platform.settings import Settings
from taxi_platform.steps import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL
from taxi_platform.warehouse import WarehouseResource

PARTITIONED_SELECT = "tag:partitioned"
MART_SELECT = "path:models/marts"
REFERENCE_SELECT = "resource_type:seed path:models/staging path:models/gold"
_LAYER_DESCRIPTIONS = {
    "seeds": "reference data from CSV files in dbt_project/seeds",
    "staging": "a view over silver with the names every colour shares",
    "gold": "the core layer: facts and dimensions",
    "marts": "a table for its consumers, recomputed over gold on every run",
}


SILVER = AssetSelection.key_prefixes("silver")
SILVER_MONTHS = TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)

# The seeds, staging views and dim_zones are built when missing (on a fresh deployment's first
# tick: the reference step creates silver's empty tables first, so the views can be made before
# any month loads) and again whenever their definition changes (dagster-dbt's code version is the
# file's checksum). Nothing here needs a hand on a new deployment.
# (Latched until requested: on the first tick silver may still be loading, and the views wait for it.
# Not since_last_handled(): that resets on the first evaluation, the very tick a fresh deployment needs.)
BUILT_WHEN_MISSING_OR_CHANGED = (
    ((AutomationCondition.initial_evaluation() & AutomationCondition.missing())
     | AutomationCondition.missing().newly_true()
     | AutomationCondition.code_version_changed()
     ).since(AutomationCondition.newly_requested() | AutomationCondition.newly_updated())
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("built when missing or changed")

# gold/fct_trips follows silver: a month whose silver file (either colour) was materialized is
# rebuilt once nothing upstream is still running. It waits while the seeds, staging views or
# dim_zones are missing (they are built by the condition above).
FOLLOWS_SILVER = (
    AutomationCondition.any_deps_updated().allow(SILVER).since_last_handled()
    & ~AutomationCondition.any_deps_missing().ignore(SILVER)
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("follows silver")

# The marts follow gold: recomputed whole after any month of fct_trips changed.
FOLLOWS_GOLD = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("follows gold")


def _layer(dbt_resource_props: Mapping[str, Any]) -> str:
    """The layer a model or seed is configured in (``+schema`` in dbt_project.yml: seeds,
    staging, gold, marts), whatever the warehouse calls its schema (BigQuery: taxi_gold)."""
    return (dbt_resource_props.get("config") or {}).get("schema") or dbt_resource_props["schema"]


class TaxiDbtTranslator(DagsterDbtTranslator):
    """Asset keys ``<schema>/<name>`` (gold/fct_trips, marts/dm_monthly_zone_revenue, ...),
    groups by layer, the silver sources mapped onto the silver assets, and the kinds and table
    names of the configured warehouse.

    A model that reads a view also depends on what the view reads: a view holds no data, so
    gold/fct_trips really reads silver through staging. Without that edge a run that selects
    silver and fct_trips but not the (unchanged) staging views could run fct_trips first."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str,
                       project: DbtProject | None) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        through_views: dict[AssetKey, AssetDep] = {}
        for parent_id in props.get("depends_on", {}).get("nodes", []):
            parent = manifest["nodes"].get(parent_id) or {}
            if (parent.get("config") or {}).get("materialized") != "view":
                continue
            for dep in self.get_asset_spec(manifest, parent_id, project).deps:
                through_views.setdefault(dep.asset_key, AssetDep(dep.asset_key))
        known = {dep.asset_key for dep in spec.deps}
        extra = [dep for key, dep in through_views.items() if key not in known and key != spec.key]
        # A colour's silver may start later than gold's months (green at the TLC: 2013-08): those
        # months of gold simply have no green rows.
        partitioned = "partitioned" in props.get("tags", [])
        deps = [AssetDep(dep.asset_key, partition_mapping=SILVER_MONTHS)
                if partitioned and dep.asset_key.path[0] == "silver" else dep for dep in [*spec.deps, *extra]]
        # What the UI shows follows the warehouse (the manifest was parsed for DuckDB's target).
        table = f"{_layer(props)}.{props.get('alias') or props['name']}"
        metadata = {"dagster/table_name": self.warehouse.table_name(table)}
        url = self.warehouse.table_url(table)
        if url:
            metadata["console"] = MetadataValue.url(url)
        # The marts are due a day after silver's deadline (taxi_platform/freshness.py).
        is_mart = props["resource_type"] == "model" and _layer(props) == "marts"
        return spec.replace_attributes(
            deps=deps, kinds={"dbt", self.warehouse.kind},
            partitions_def=all_colours_partitions() if partitioned else None,
            freshness_policy=mart_freshness_policy() if is_mart else spec.freshness_policy,
        ).merge_attributes(metadata=metadata)

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        meta_key = dbt_resource_props.get("meta", {}).get("dagster", {}).get("asset_key")
        if meta_key:
            return AssetKey(meta_key)
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([_layer(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return None
        return _layer(dbt_resource_props)

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        text = (dbt_resource_props.get("description") or "").strip()
        layer = _LAYER_DESCRIPTIONS.get(_layer(dbt_resource_props), "")
        path = dbt_resource_props.get("original_file_path")
        extra = f"\n\ndbt {dbt_resource_props['resource_type']} `{dbt_resource_props['name']}`"
        extra += f" ({layer})" if layer else ""
        extra += f", defined in `dbt_project/{path}`." if path else "."
        return (text or super().get_description(dbt_resource_props)) + extra

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        tags = dict(super().get_tags(dbt_resource_props))
        if dbt_resource_props["resource_type"] != "source":
            tags["layer"] = _layer(dbt_resource_props)
        return tags

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:data-platform"]

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> AutomationCondition | None:
        if dbt_resource_props["resource_type"] not in ("model", "seed"):
            return None
        if "partitioned" in dbt_resource_props.get("tags", []):
            return FOLLOWS_SILVER
        if _layer(dbt_resource_props) == "marts":
            return FOLLOWS_GOLD
        return BUILT_WHEN_MISSING_OR_CHANGED  # seeds, staging views, dimensions


    def __init__(self, warehouse: WarehouseResource, **kwargs):
        super().__init__(**kwargs)
        self.warehouse = warehouse


# The manifest is parsed here when missing or stale (see taxi_platform/dbt_project.py).
MANIFEST_PATH = prepare_manifest(taxi_dbt_project)
_MANIFEST = json.loads(Path(MANIFEST_PATH).read_text())


def _node(unique_id: str) -> Mapping[str, Any]:
    return _MANIFEST["nodes"][unique_id]


def _rows_by_file(warehouse: WarehouseResource, node: Mapping[str, Any], filenames: list[str]) -> dict[str, int]:
    """{file: its rows in the model's table} for the run's files, in their order (0 when none)."""
    relation = f"{node['schema']}.{node['alias']}"
    counts = dict(warehouse.query(
        f"SELECT filename, count(*) FROM {relation} WHERE filename IN ({', '.join('?' for _ in filenames)}) "
        "GROUP BY filename", filenames))
    return {name: counts.get(name, 0) for name in filenames}


def _table_metadata(warehouse: WarehouseResource, node: Mapping[str, Any],
                    rows_by_file: dict[str, int] | None, fetched: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Row counts and the column schema of a model's table. ``fetched``: the event's metadata from
    dagster-dbt's ``fetch_row_counts()``/``fetch_column_metadata()`` (server warehouses); what
    it lacks (all of it on DuckDB) is read from the warehouse here. For a partitioned model
    (``rows_by_file``: the run's months' files) ``dagster/row_count`` counts the rows of those
    files and ``table_row_count`` the whole table. The columns keep their dbt YAML descriptions."""
    if node.get("config", {}).get("materialized") == "view":
        return {}  # counting a view would scan silver; its schema comes from the dbt YAML
    relation = f"{node['schema']}.{node['alias']}"
    fetched = fetched or {}
    described = dict(node.get("columns") or {})
    if "dagster/row_count" in fetched:
        total = fetched["dagster/row_count"].value
    else:
        total = warehouse.query(f"SELECT count(*) FROM {relation}")[0][0]
    if "dagster/column_schema" in fetched:
        columns = [(c.name, c.type) for c in fetched["dagster/column_schema"].schema.columns]
    else:
        columns = warehouse.describe(relation)
    metadata: dict[str, Any] = {
        "table_row_count" if rows_by_file is not None else "dagster/row_count": total,
        "dagster/column_schema": TableSchema(columns=[
            TableColumn(name, type_, (described.get(name) or {}).get("description") or None)
            for name, type_ in columns]),
        "table": relation,
    }
    if node["name"] == "dm_monthly_zone_revenue":
        metadata.update(_mart_metadata(warehouse, relation))
    if rows_by_file is not None:
        metadata["dagster/row_count"] = sum(rows_by_file.values())
        metadata["files"] = ", ".join(rows_by_file)
    return metadata


class _RunManifest(Mapping):
    """The run's own manifest (``<target>/manifest.json``, written by dbt before it builds
    anything), whose relation names are this warehouse's: the assets' manifest was parsed for
    DuckDB's target, and PostgreSQL refuses its ``"warehouse".gold...`` names as cross-database
    references. Read on first use; the assets' manifest until dbt has written it."""

    def __init__(self, target: Path):
        self._path, self._loaded = target / "manifest.json", None

    def _manifest(self) -> Mapping[str, Any]:
        if self._loaded is None:
            if not self._path.is_file():
                return _MANIFEST
            self._loaded = json.loads(self._path.read_text())
        return self._loaded

    def __getitem__(self, key: str) -> Any:
        return self._manifest()[key]

    def __iter__(self):
        return iter(self._manifest())

    def __len__(self) -> int:
        return len(self._manifest())


def _fetched_as_dbt_runs(invocation, run_manifest: _RunManifest) -> Iterator[Any]:
    """A server warehouse's events as dbt emits them, each model's with dagster-dbt's own row
    count, column schema and column lineage (``fetch_row_counts()``, ``fetch_column_metadata()``:
    queried through dbt's adapter, in threads, while dbt goes on), looked up in the run's manifest."""
    fetching = copy.copy(invocation)
    fetching.manifest = run_manifest
    return DbtEventIterator(invocation.stream(), fetching).fetch_row_counts().fetch_column_metadata()


def _platform_table(props: Mapping[str, Any]) -> str:
    """A dbt node's or source's table as the warehouse port names it (``staging.stg_...``)."""
    if props["resource_type"] == "source":
        return f"{props['source_name']}.{props.get('identifier') or props['name']}"
    return f"{_layer(props)}.{props.get('alias') or props['name']}"


def _column_lineage(invocation, warehouse: WarehouseResource, node_id: str, target: Path,
                    run_manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``dagster/column_lineage`` of a model on DuckDB, derived from its compiled SQL with sqlglot
    by the function dagster-dbt's ``fetch_column_metadata()`` uses (pinned by requirements.lock),
    with the run's manifest and the column types read with this process's connection, once dbt
    has exited (``fetch_column_metadata()`` itself queries while dbt runs, and dbt's process holds
    the file then). dbt writes the run's
    manifest before it builds anything. Best effort: a model whose lineage cannot be derived has
    none, and the step goes on."""
    from dagster_dbt.core.dbt_cli_event import EventHistoryMetadata, _build_column_lineage_metadata

    try:
        props = run_manifest["nodes"][node_id]
        if props["resource_type"] != "model":
            return {}

        def columns(p: Mapping[str, Any]) -> dict[str, dict[str, str]]:
            return {name.lower(): {"data_type": type_} for name, type_ in warehouse.describe(_platform_table(p))}

        parents, parent_keys = {}, []
        for parent_id in run_manifest["parent_map"].get(node_id, []):
            parent = run_manifest["nodes"].get(parent_id) or run_manifest["sources"].get(parent_id)
            if parent and parent["resource_type"] in ("model", "seed", "source"):
                parents[parent["relation_name"]] = columns(parent)
                parent_keys.append(invocation.dagster_dbt_translator.get_asset_key(parent).to_user_string())
        history = EventHistoryMetadata(columns=columns(props), parents=parents)
        compiled = target / "compiled" / props["package_name"] / props["original_file_path"]
        cached = _LineageCache(compiled.read_text(), history, props, parent_keys)
        known = cached.get()
        return known if known is not None else cached.put(_build_column_lineage_metadata(
            event_history_metadata=history, dbt_resource_props=props, manifest=run_manifest,
            dagster_dbt_translator=invocation.dagster_dbt_translator, target_path=target,
            project=invocation.project))
    except Exception as exc:  # noqa: BLE001  lineage is metadata: never fail the step for it
        get_dagster_logger().warning(f"no column lineage for {node_id}: {type(exc).__name__}: {exc}")
        return {}


LINEAGE_CACHE = taxi_dbt_project.project_dir / taxi_dbt_project.target_path / "column_lineage"


class _LineageCache:
    """A model's column lineage as derived before from the same compiled SQL, column types,
    parents and library versions (a file per digest in :data:`LINEAGE_CACHE`): sqlglot's
    optimizer took about 0.15 s a model, paid again on every run for the same answer."""

    KEEP = 500  # files, the most recently written (a partitioned model compiles anew per month)

    def __init__(self, sql: str, history: Any, props: Mapping[str, Any], parent_keys: list[str]):
        import dagster_dbt
        import sqlglot

        what = [sql, history.columns, history.parents, props["relation_name"], sorted(parent_keys),
                props["depends_on"]["nodes"], dagster_dbt.__version__, sqlglot.__version__]
        digest = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]
        self.folder = LINEAGE_CACHE
        self.path = self.folder / digest

    def get(self) -> dict[str, Any] | None:
        from dagster import deserialize_value

        with contextlib.suppress(OSError, ValueError, TypeError, json.JSONDecodeError):
            return deserialize_value(self.path.read_text())
        return None

    def put(self, lineage: dict[str, Any]) -> dict[str, Any]:
        from dagster import serialize_value

        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            scratch = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            scratch.write_text(serialize_value(lineage))
            os.replace(scratch, self.path)  # atomic: another run may be reading it
            kept = sorted(self.folder.iterdir(), key=lambda f: f.stat().st_mtime)
            for old in kept[:-self.KEEP]:
                old.unlink(missing_ok=True)
        return lineage


def _report_months(context: AssetExecutionContext, output_name: str, months: list[str],
                   rows_by_file: dict[str, int]) -> None:
    """Each month of a multi-month run of a partitioned model: its own row count and files on its
    own materialization (taxi_platform/assets/common.py: report_month)."""
    key = context.asset_key_for_output(output_name)
    for month in months:
        names = partition_filenames(month, month)
        context.add_asset_metadata({"dagster/row_count": sum(rows_by_file[n] for n in names),
                                    "files": ", ".join(names)}, asset_key=key, partition_key=month)


MART_CHART_MONTHS = 24  # the chart shows the latest months; the table holds them all


def _bar(value: float, largest: float, width: int = 20) -> str:
    """A text bar (Unicode blocks, eighths) that any Markdown renderer shows."""
    if largest <= 0 or value <= 0:
        return ""
    eighths = max(1, round(width * 8 * value / largest))  # a sliver shows that there is some
    return "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]


def mart_chart(rows: list[tuple]) -> str:
    """Markdown: trips and revenue per pickup month and service type, as bars.
    ``rows``: (revenue_month, service_type, trips, revenue), months ascending."""
    if not rows:
        return "_The mart is empty._"
    rows = rows[-MART_CHART_MONTHS * 2:]
    most_trips = max(r[2] or 0 for r in rows)
    most_revenue = max(float(r[3] or 0) for r in rows)
    lines = ["| month | service | trips | | revenue ($) | |", "|---|---|--:|:--|--:|:--|"]
    for month, service, trips, revenue in rows:
        revenue = float(revenue or 0)
        lines.append(f"| {str(month)[:7]} | {service} | {trips:,} | `{_bar(trips, most_trips) or ' '}` "
                     f"| {revenue:,.0f} | `{_bar(revenue, most_revenue) or ' '}` |")
    return "\n".join(lines)


def _mart_metadata(warehouse: WarehouseResource, relation: str) -> dict[str, Any]:
    rows = warehouse.query(
        f"SELECT revenue_month, service_type, sum(total_monthly_trips), sum(revenue_monthly_total_amount) "
        f"FROM {relation} GROUP BY 1, 2 ORDER BY 1, 2")
    return {"monthly_trips_and_revenue": MetadataValue.md(mart_chart([tuple(r) for r in rows]))}


def _failure_description(invocation, what: str) -> str:
    error = invocation.get_error()
    text = getattr(error, "description", None) or str(error)
    _, _, parsed = text.partition("Errors parsed from dbt logs:")
    detail = "\n\n".join(p.strip() for p in parsed.split("\n\n") if p.strip()) or text
    return f"dbt failed for {what}:\n\n{detail}"


# What every run asks of dbt: build the selected models and seeds with their data tests. dbt's unit
# tests (fixed inputs, models/*/_models.yml) prove the SQL, not the month: they run in the test
# suite (tests/integration/test_dbt_project.py) and by hand (`dbt test --select test_type:unit`),
# not in every materialization (dbt's own advice for production runs; ~0.2 s each).
BUILD = ["build", "--exclude-resource-type", "unit_test"]

# dbt asks PyPI for its latest version and sends usage statistics unless told not to: neither is
# wanted in a run (and a machine without internet waits for the request to time out).
# Nor a debug log file (every query, every event): dbt would write it into the invocation's target
# folder, which is removed with the step, so nobody could read it (0.1 s an invocation). dbt's
# own output, at info level, stays in the step's stdout.
QUIET_DBT = {"DBT_VERSION_CHECK": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_LEVEL_FILE": "none"}


def _summary(events: list, what: str, seconds: float, failed: bool) -> str:
    """One line for the run log: what a dbt invocation built and tested, and how long it took."""
    built = sum(isinstance(e, Output) for e in events)
    checks = [e for e in events if isinstance(e, AssetCheckResult)]
    passed = sum(c.passed for c in checks)
    return (f"dbt for {what}: {built} built, {passed}/{len(checks)} tests passed in {seconds:.1f}s"
            + (" — FAILED (see the step's stdout for dbt's own log)" if failed else ""))


def _with_table_metadata(context: AssetExecutionContext, event: Output, warehouse: WarehouseResource, invocation,
                         target: Path, run_manifest: Mapping[str, Any], fetched: bool, months: list[str] | None,
                         filenames: list[str] | None) -> Output:
    """A model's or seed's output with its table's row counts, column schema and lineage (and,
    for a multi-month run of a partitioned model, each month's own row count)."""
    unique_id = event.metadata.get("unique_id")
    node_id = unique_id.value if hasattr(unique_id, "value") else unique_id
    if node_id not in _MANIFEST["nodes"]:
        return event
    node = _node(node_id)
    # a partitioned model's rows of the run's files, counted once for the run and each month
    rows_by_file = (_rows_by_file(warehouse, node, filenames)
                    if filenames and "partitioned" in node.get("tags", []) else None)
    lineage = {} if fetched else _column_lineage(invocation, warehouse, node_id, target, run_manifest)
    event = event.with_metadata({
        **event.metadata, **lineage,
        **_table_metadata(warehouse, node, rows_by_file, event.metadata if fetched else None)})
    if rows_by_file is not None and len(months) > 1:
        _report_months(context, event.output_name, months, rows_by_file)
    return event


def run_dbt(context: AssetExecutionContext, warehouse: WarehouseResource, dbt: DbtCliResource, args: list[str],
            what: str, months: list[str] | None = None, env: dict[str, str] | None = None) -> Iterator[Any]:
    """Run ``dbt <args>`` for the selected assets (with ``env`` set too) and yield its events with
    table metadata: as dbt goes on a server warehouse (dagster-dbt's ``fetch_row_counts()`` and
    ``fetch_column_metadata()``); once it has exited on DuckDB, whose file dbt's process holds
    while it runs (see the module docstring).
    A failed model or test fails the step with dbt's messages (after the events that did happen,
    so a failed check is recorded and blocks what is downstream). dbt starts from what the last
    invocation with the same profile parsed (partial parsing)."""
    variables = {**QUIET_DBT, **warehouse.dbt_env(), **(env or {})}
    if warehouse.held_by_dbt_while_it_runs:  # the run's manifest is read only once dbt has exited
        variables[MANIFEST_AFTER_PARSE_VARIABLE] = "0"
    filenames = partition_filenames(months[0], months[-1]) if months else None
    events: list = []
    with tempfile.TemporaryDirectory(prefix="dbt-") as target, warehouse.exclusive(), \
            warehouse.outside_session(), dbt_environment(variables):
        started = time.monotonic()
        if isinstance(dbt, TaxiDbtCliResource):
            dbt_server.client_executable()  # once the server is up, what it parsed ahead is kept
        restore_partial_parse(Path(target))
        # DuckDB: nothing reads through dagster-dbt's adapter handle (see below), so none is made.
        extra = ({"with_adapter": not warehouse.held_by_dbt_while_it_runs}
                 if isinstance(dbt, TaxiDbtCliResource) else {})
        invocation = dbt.cli(args, context=context, raise_on_error=False, target_path=Path(target), **extra)
        run_manifest = _RunManifest(Path(target))
        reads = contextlib.nullcontext()
        if warehouse.held_by_dbt_while_it_runs:
            # DuckDB: dbt's process holds the file while it runs, so its events are taken once it
            # has exited, and their tables read with this process's own connection (one for all).
            stream, fetched, reads = list(invocation.stream()), False, warehouse.session()
        else:
            stream, fetched = _fetched_as_dbt_runs(invocation, run_manifest), True
        with reads:
            for event in stream:
                if isinstance(event, Output):
                    event = _with_table_metadata(context, event, warehouse, invocation, Path(target), run_manifest,
                                                 fetched, months, filenames)
                events.append(event)
                yield event
        keep_partial_parse(Path(target))
        failed = not invocation.is_successful()
        context.log.info(_summary(events, what, time.monotonic() - started, failed))
        description = redact(_failure_description(invocation, what), warehouse.secrets()) if failed else None
    if failed:
        if is_transient(RuntimeError(description)):  # dbt reports a lost connection or lock as text
            raise RuntimeError(description)
        raise Failure(description=description, allow_retries=False)


def build_dbt_assets(warehouse: WarehouseResource | None = None) -> list:
    """The two ``@dbt_assets`` definitions (see the module docstring), their kinds and table names
    those of ``warehouse`` (the configured one when not given)."""
    translator = TaxiDbtTranslator(warehouse or configured_warehouse(),
                                   settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=True))
    # What the two share: the project, the translator, the warehouse pool, the retry policy.
    shared = {"manifest": MANIFEST_PATH, "project": taxi_dbt_project, "dagster_dbt_translator": translator,
              "pool": WAREHOUSE_POOL, "retry_policy": TRANSIENT_RETRY_POLICY}

    @dbt_assets(
        **shared,
        select=REFERENCE_SELECT,
        exclude=PARTITIONED_SELECT,
        name="dbt_reference_assets",
    )
    def dbt_reference_assets(context: AssetExecutionContext, warehouse: WarehouseResource, dbt: DbtCliResource):
        """Seeds (taxi zones, payment types), the staging views over silver and the dimensions:
        nothing here depends on the month, so these are unpartitioned. Silver's tables are created
        (empty) when missing, so a colour's view can be made before its first month loads."""
        for schema in SCHEMAS.values():
            warehouse.ensure_tables(schema)
        yield from run_dbt(context, warehouse, dbt, BUILD, "the seeds, staging views and dimensions")

    @dbt_assets(
        **shared,
        select=f"{PARTITIONED_SELECT} {MART_SELECT}",
        name="dbt_trip_and_mart_assets",
        backfill_policy=BackfillPolicy.single_run(),  # fct_trips: a backfill's months in one run
    )
    def dbt_trip_and_mart_assets(context: AssetExecutionContext, warehouse: WarehouseResource, dbt: DbtCliResource):
        """gold/fct_trips for the run's months (monthly; a range in a single-run backfill): the
        rows of those months' silver files, replaced in one transaction. And the marts, each
        recomputed whole over gold (unpartitioned: one table for every month). One ``dbt build``
        for whichever of them the run selects."""
        keys = context.selected_asset_keys
        if not any(context.assets_def.specs_by_key[key].partitions_def for key in keys):
            yield from run_dbt(context, warehouse, dbt, BUILD, "the marts")
            return
        # The months go to dbt as TAXI_DBT_MIN_DATE/MAX_DATE. Not --vars: new vars make dbt parse
        # the whole project (dbt_project/macros/partitions.sql).
        window = context.partition_time_window
        first, last = context.partition_key_range.start, context.partition_key_range.end
        window_env = dict(zip(WINDOW_VARIABLES, (window.start.strftime("%Y-%m-%d"),
                                                 window.end.strftime("%Y-%m-%d")), strict=True))
        what = f"partition {first}" if first == last else f"partitions {first}..{last}"
        if any(key.path[0] == "marts" for key in keys):
            what += " and the marts"
        yield from run_dbt(context, warehouse, dbt, BUILD, what, months=list(context.partition_keys),
                           env=window_env)

    return [dbt_reference_assets, dbt_trip_and_mart_assets]


def build_dbt_automation_sensor(dbt_defs: list) -> AutomationConditionSensorDefinition:
    """Runs the dbt assets when their conditions above hold: the seeds, staging views and
    dim_zones when missing or changed, gold/fct_trips after silver, the marts after gold; so a
    month loaded by a schedule, a sensor or a backfill reaches the marts without anyone asking, on
    a fresh deployment too. Running by default: it only reacts to what was loaded and never
    downloads anything."""
    return AutomationConditionSensorDefinition(
        "dbt_automation_sensor",
        target=AssetSelection.assets(*dbt_defs),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=Settings.from_env().automation_interval_seconds,
        description=("Builds the seeds, staging views and dim_zones when missing or changed, "
                     "gold/fct_trips for each month whose silver changed, then the marts (their "
                     "automation conditions: 'built when missing or changed', 'follows silver', "
                     "'follows gold')."),
    )


dbt_asset_defs = build_dbt_assets()
dbt_reference_assets, dbt_trip_and_mart_assets = dbt_asset_defs


dbt_automation_sensor = build_dbt_automation_sensor(dbt_asset_defs)
