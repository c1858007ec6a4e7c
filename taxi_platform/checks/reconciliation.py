"""``row_reconciliation``: every row of a month's file accounted for, layer by layer.

- ``silver/<colour>_tripdata``, per month: the rows of the month's file in the lake, counted
  over the file itself (taxi_platform/checks/file_rows.py: never what a warehouse loaded), must
  equal bronze's rows of the file, which must equal silver's rows of the file + its quarantined
  rows + the duplicates collapsed within the file + its ids owned by another month's file
  (an id belongs to its earliest file). Bronze's, silver's and the quarantine's rows are counted
  in the warehouse when the check runs (by filename); the duplicates collapsed and the ids owned
  elsewhere are the figures the silver build of the file recorded (its materialization's
  ``loads``). So rows deleted from silver behind the platform's back fail the check the next time
  it runs.
- ``gold/fct_trips``, per month (both colours): its rows of each of the month's files must equal
  silver's rows of that file. fct_trips filters nothing by design (every silver trip, zones and
  payment types by left join), so there is nothing to subtract.

A mismatch fails the check at ERROR naming the file and the difference. Two causes the platform
knows are WARN, with what to do: the lake object is no longer the one bronze loaded (a newer file
refused by the bronze gate, or not loaded yet), and an earlier month's file rebuilt in silver after
this one, which may have taken ids this file held (silver's recorded figures predate it).

Both are separate ``@asset_check``s, partitioned like their asset: they run after the asset in
every run that materializes it, and alone ("Execute checks" in the UI, or a run selecting only
the check) against what the warehouse holds now.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
    asset_check,
)

from taxi_platform.checks.file_rows import file_rows
from taxi_platform.lake import LakeResource
from taxi_platform.partitions import all_colours_partitions, partitions_for
from taxi_platform.schemas import SCHEMAS, TripSchema
from taxi_platform.steps import TRANSIENT_RETRY_POLICY, WAREHOUSE_POOL, retried_only_if_transient
from taxi_platform.warehouse import WarehouseResource

CHECK = "row_reconciliation"
LOADS = "loads"  # the ingest assets' metadata key of what each load left (taxi_platform/assets/unchanged.py)
FCT_TRIPS = AssetKey(["gold", "fct_trips"])


@dataclass
class Month:
    """One month's reconciliation: its figures and what does not add up."""

    month: str
    figures: dict
    problems: list[tuple[AssetCheckSeverity, str]]

    @property
    def passed(self) -> bool:
        return not self.problems


def _loads(record) -> dict:
    """The ``loads`` metadata of a materialization record ({filename: figures})."""
    event = record.asset_materialization
    value = getattr(event.metadata.get(LOADS), "value", None) if event else None
    return value if isinstance(value, dict) else {}


def _last_materialization(instance: DagsterInstance, key: AssetKey, month: str):
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[month]), limit=1).records
    return records[0] if records else None


def _earlier_files_rebuilt_since(instance: DagsterInstance, key: AssetKey, storage_id: int,
                                 filename: str) -> list[str]:
    """Files sorting before ``filename`` that a materialization of ``key`` after ``storage_id``
    rebuilt (not skipped as unchanged): each may have taken ids of ``filename`` since."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, after_storage_id=storage_id), limit=1000).records
    return sorted({name for r in records for name, load in _loads(r).items()
                   if name < filename and isinstance(load, Mapping) and not load.get("unchanged")})


def _cannot_count(month: str, figures: dict, text: str) -> Month:
    return Month(month, figures, [(AssetCheckSeverity.ERROR, text)])


def reconcile_silver_month(context: AssetCheckExecutionContext, schema: TripSchema, month: str,
                           warehouse: WarehouseResource, lake: LakeResource) -> Month:
    table = f"silver.{schema.table}"
    silver_key, bronze_key = AssetKey(["silver", schema.table]), AssetKey(["bronze", schema.table])
    load = warehouse.published_load(schema, month)
    if load is None:
        return _cannot_count(month, {}, f"partition {month}: bronze.{schema.table} holds no file of the month: "
                             f"materialize bronze/{schema.table} and silver/{schema.table} for {month}")
    filename = load.filename
    record = _last_materialization(context.instance, silver_key, month)
    built = _loads(record).get(filename) if record else None
    if not isinstance(built, Mapping):
        return _cannot_count(month, {"file": filename},
                             f"{filename} (partition {month}): silver/{schema.table} has no materialization built "
                             f"from it (bronze holds it): materialize silver/{schema.table} for {month}")

    counts = warehouse.file_row_counts(schema, filename)
    key = f"{schema.colour}/{filename}"  # the lake's key layout (taxi_platform/assets/lake.py:lake_key)
    obj = lake.stat(key)
    if obj is None:
        return _cannot_count(month, {"file": filename, "bronze_rows": counts.bronze},
                             f"{filename} (partition {month}): the lake holds no object {lake.uri(key)} to count "
                             "(or it changed behind the lake's back): materialize "
                             f"lake/{schema.table} for {month}")
    started = time.monotonic()
    with lake.local_copy(key) as path:
        in_file = file_rows(path)
    context.log.info(f"{filename}: {in_file:,} rows counted in the lake object in {time.monotonic() - started:.1f}s")

    collapsed = int(built.get("duplicates_collapsed", 0))
    elsewhere = int(built.get("duplicates_in_other_files", 0))
    accounted = counts.silver + counts.quarantined + collapsed + elsewhere
    figures = {"file": filename, "file_rows": in_file, "bronze_rows": counts.bronze,
               "silver_rows": counts.silver, "rows_quarantined": counts.quarantined,
               "duplicates_collapsed": collapsed, "ids_owned_by_other_months": elsewhere,
               "silver_accounted": accounted, "bronze_minus_file": counts.bronze - in_file,
               "silver_accounted_minus_bronze": accounted - counts.bronze}
    problems = []
    if in_file != counts.bronze:
        bronze_record = _last_materialization(context.instance, bronze_key, month)
        loaded_sha = (_loads(bronze_record).get(filename) or {}).get("sha256") if bronze_record else None
        text = (f"{filename} (partition {month}): bronze.{schema.table} holds {counts.bronze:,} rows of it, the file "
                f"in the lake has {in_file:,} ({counts.bronze - in_file:+,} in bronze)")
        if loaded_sha and loaded_sha != obj.sha256:
            problems.append((AssetCheckSeverity.WARN, text + ", but the lake object is no longer the one bronze "
                             f"loaded (sha256 {loaded_sha[:12]}…, now {obj.sha256[:12]}…): materialize "
                             f"bronze/{schema.table} for {month} to load it (or see why its gate refused it)"))
        else:
            problems.append((AssetCheckSeverity.ERROR, text))
    if accounted != counts.bronze:
        text = (f"{filename} (partition {month}): silver accounts for {accounted:,} rows, bronze.{schema.table} holds "
                f"{counts.bronze:,} ({accounted - counts.bronze:+,} in silver): {counts.silver:,} in {table} + "
                f"{counts.quarantined:,} quarantined + {collapsed:,} duplicates collapsed + {elsewhere:,} ids "
                "owned by other months")
        rebuilt = _earlier_files_rebuilt_since(context.instance, silver_key, record.storage_id, filename)
        if rebuilt and accounted < counts.bronze:
            problems.append((AssetCheckSeverity.WARN, text + f"; {', '.join(rebuilt)} was rebuilt in silver "
                             "since, and an id belongs to its earliest file: materialize "
                             f"silver/{schema.table} for {month} to count the ids it took again"))
        else:
            problems.append((AssetCheckSeverity.ERROR, text))
    return Month(month, figures, problems)


def reconcile_gold_month(month: str, warehouse: WarehouseResource) -> Month:
    silver: dict[str, int] = {}
    for schema in SCHEMAS.values():
        silver.update(warehouse.silver_rows_by_file(schema, schema.month_files(month)))
    gold = warehouse.gold_rows_by_file([name for s in SCHEMAS.values() for name in s.month_files(month)])
    files = sorted(set(silver) | set(gold))
    by_file = {name: {"silver_rows": silver.get(name, 0), "fct_trips_rows": gold.get(name, 0)} for name in files}
    figures = {"silver_rows": sum(silver.values()), "fct_trips_rows": sum(gold.values()),
               "filtered_by_design": 0, "fct_trips_minus_silver": sum(gold.values()) - sum(silver.values()),
               "files": MetadataValue.json(by_file)}
    problems = [(AssetCheckSeverity.ERROR, _gold_mismatch(name, month, n))
                for name, n in by_file.items() if n["fct_trips_rows"] != n["silver_rows"]]
    return Month(month, figures, problems)


def _gold_mismatch(name: str, month: str, n: Mapping[str, int]) -> str:
    return (f"{name} (partition {month}): gold.fct_trips holds {n['fct_trips_rows']:,} rows of it, silver "
            f"{n['silver_rows']:,} ({n['fct_trips_rows'] - n['silver_rows']:+,} in fct_trips)")


def _months_table(months: list[Month]) -> MetadataValue:
    columns = {k: None for m in months for k, v in m.figures.items() if not isinstance(v, MetadataValue)}
    names = ["month", *columns, "passed"]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for m in months:
        row = {"month": m.month, **m.figures, "passed": m.passed}
        lines.append("| " + " | ".join(str(row.get(n, "")) for n in names) + " |")
    return MetadataValue.md("\n".join(lines))


def check_result(what: str, months: list[Month]) -> AssetCheckResult:
    """One result for the run's months: the figures of a single month as metadata (a table for
    several), failed when any month does not reconcile, at ERROR unless every cause is a WARN one."""
    problems = [p for m in months for p in m.problems]
    if len(months) == 1:
        metadata = dict(months[0].figures)
    else:
        metadata = {"months": _months_table(months),
                    "months_not_reconciled": [m.month for m in months if not m.passed]}
    severity = (AssetCheckSeverity.ERROR if any(s == AssetCheckSeverity.ERROR for s, _ in problems)
                else AssetCheckSeverity.WARN if problems else AssetCheckSeverity.ERROR)
    if problems:
        description = f"{what} does not reconcile: " + "; ".join(text for _, text in problems)
    else:
        description = f"{what} reconciles: " + ("; ".join(_summary(m) for m in months) if len(months) <= 3
                                                else f"{len(months)} months (their figures in `months`)")
    return AssetCheckResult(passed=not problems, severity=severity, description=description, metadata=metadata)


def _summary(month: Month) -> str:
    f = month.figures
    if "file_rows" in f:
        return (f"{f['file']}: {f['file_rows']:,} rows in the file = {f['bronze_rows']:,} in bronze = "
                f"{f['silver_rows']:,} in silver + {f['rows_quarantined']:,} quarantined + "
                f"{f['duplicates_collapsed']:,} duplicates collapsed + {f['ids_owned_by_other_months']:,} ids owned "
                "by other months")
    return f"partition {month.month}: {f['fct_trips_rows']:,} rows in fct_trips = {f['silver_rows']:,} in silver"


def build_silver_reconciliation(schema: TripSchema, source: str | None = None):
    """The check of ``silver/<colour>_tripdata``, partitioned by the colour's months at ``source``
    (TAXI_SOURCE when not given), as the asset is."""
    table = f"silver.{schema.table}"

    @asset_check(
        asset=AssetKey(["silver", schema.table]),
        name=CHECK,
        blocking=False,
        partitions_def=partitions_for(schema.colour, source),
        retry_policy=TRANSIENT_RETRY_POLICY,
        pool=WAREHOUSE_POOL,
        description=(
            "Every row of the month's file accounted for: the rows of the lake object counted over the "
            "file itself (CSV: its non-empty lines less the header; Parquet: its footer's row count) = "
            f"bronze's rows of the file = its rows in `{table}` + in `{table}_quarantine` + the duplicates "
            "collapsed within the file + its ids owned by another month's file (the last two as the "
            "silver build recorded them; the rest counted now, by filename). Metadata: the figures. A "
            "mismatch fails at ERROR naming the file and the difference (WARN when the lake object is not "
            "the one bronze loaded, or an earlier month was rebuilt since and may have taken ids)."),
    )
    @retried_only_if_transient
    def _silver_reconciliation(context: AssetCheckExecutionContext, warehouse: WarehouseResource,
                               lake: LakeResource) -> AssetCheckResult:
        months = [reconcile_silver_month(context, schema, month, warehouse, lake)
                  for month in context.partition_keys]
        return check_result(f"silver/{schema.table}", months)

    return _silver_reconciliation


def build_gold_reconciliation(source: str | None = None):
    @asset_check(
        asset=FCT_TRIPS,
        name=CHECK,
        blocking=False,
        partitions_def=all_colours_partitions(source),
        retry_policy=TRANSIENT_RETRY_POLICY,
        pool=WAREHOUSE_POOL,
        description=(
            "gold.fct_trips's rows of each of the month's files (yellow and green) = silver's rows of "
            "that file, counted now by filename. fct_trips filters no trip by design (every silver trip; "
            "zones and payment types by left join), so nothing is subtracted. Metadata: the totals and "
            "the figures per file. A mismatch fails at ERROR naming the file and the difference."),
    )
    @retried_only_if_transient
    def _gold_reconciliation(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> AssetCheckResult:
        return check_result("gold/fct_trips", [reconcile_gold_month(m, warehouse) for m in context.partition_keys])

    return _gold_reconciliation


def build_reconciliation_checks(source: str | None = None) -> list:
    return [*[build_silver_reconciliation(schema, source) for schema in SCHEMAS.values()],
            build_gold_reconciliation(source)]
