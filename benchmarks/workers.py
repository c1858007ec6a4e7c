"""What runs inside the measured child process (``python -m benchmarks.run --worker spec.json``).

Every worker imports what it needs and prepares its state first, then times only the work
itself with ``time.perf_counter`` (interpreter start-up and imports are outside the timed
region, Great Expectations' included: the bronze gate imports it on first use; they show in
the child's wall time, which is recorded too). It writes a JSON result to ``spec["result"]``:
``seconds`` and whatever else it learned (step times, row counts).

The environment (TAXI_*, PG*, DAGSTER_HOME) is set by the orchestrator, so the platform's
own code reads its settings exactly as in production. This module imports nothing else from
``benchmarks``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

INGEST_LAYERS = ("raw", "lake", "bronze", "silver")
RUN_NAME = "bench"


# -- helpers ---------------------------------------------------------------------------------

def _fresh(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)
        Path(path).mkdir(parents=True, exist_ok=True)


def _import_ahead() -> None:
    """Import what a run imports on first use (the bronze gate's Great Expectations), so that
    the clock measures the work, not the imports, as for every other measurement."""
    import great_expectations  # noqa: F401

    import taxi_platform.checks.gx_runner  # noqa: F401


def _step_seconds(instance, run_id: str) -> tuple[dict[str, float], float]:
    """Per-step seconds (STEP_START to STEP_SUCCESS/FAILURE) and the span of all steps."""
    from dagster import DagsterEventType

    starts, steps, first, last = {}, {}, None, None
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        first = entry.timestamp if first is None else min(first, entry.timestamp)
        last = entry.timestamp if last is None else max(last, entry.timestamp)
        if event.event_type == DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif (event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE)
              and event.step_key in starts):
            steps[event.step_key] = round(entry.timestamp - starts[event.step_key], 3)
    return steps, (last - first) if first is not None else 0.0


def _failures(result) -> list[str]:
    from dagster import DagsterEventType

    return [e.event_specific_data.error.message.strip()[:2000] for e in result.all_events
            if e.event_type == DagsterEventType.STEP_FAILURE]


def _materialization_metadata(result) -> dict[str, dict]:
    out = {}
    for event in result.get_asset_materialization_events():
        m = event.event_specific_data.materialization
        out["/".join(m.asset_key.path)] = {k: getattr(v, "value", v) for k, v in m.metadata.items()
                                           if k in ("unchanged", "rows_in", "dagster/row_count",
                                                    "duplicates_collapsed", "rows_quarantined", "bytes")}
    return out


def _instance():
    """The run's instance in the data dir (``<TAXI_DATA_DIR>/.dagster_home``), as a deployment's
    is: a first load (fresh data dir) starts with no history, and a re-run sees the runs before
    it, so it can skip unchanged months."""
    from dagster import DagsterInstance

    home = Path(os.environ["TAXI_DATA_DIR"]) / ".dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    return DagsterInstance.local_temp(tempdir=str(home))


def _timed(instance, execute) -> dict:
    """Run ``execute()`` (one in-process Dagster run), timed; raises when the run fails."""
    began = time.perf_counter()
    result = execute()
    seconds = time.perf_counter() - began
    if not result.success:
        raise RuntimeError("the run failed:\n" + "\n---\n".join(_failures(result)))
    steps, span = _step_seconds(instance, result.run_id)
    return {"seconds": seconds, "steps": steps, "steps_span": round(span, 3),
            "assets": _materialization_metadata(result)}


def _materialize(assets, *, partition_key=None, selection=None, tags=None) -> dict:
    """One in-process Dagster run of ``assets`` with the resources of the environment, timed."""
    from dagster import materialize

    from taxi_platform.resources import resources_from_env

    _import_ahead()
    instance, resources = _instance(), resources_from_env()
    return _timed(instance, lambda: materialize(
        assets, selection=selection, partition_key=partition_key, tags=tags, instance=instance,
        resources=resources, raise_on_error=False))


def _schema(p: dict):
    from taxi_platform.schemas import SCHEMAS

    return SCHEMAS[p.get("colour", "yellow")]


# -- workers ---------------------------------------------------------------------------------

def dagster_month(p: dict) -> dict:
    """raw -> lake -> bronze -> silver of one month of one colour (yellow), the real assets
    through Dagster; the source is the environment's (TAXI_SOURCE: the CSV mirror, or the TLC's
    Parquet layout)."""
    _fresh(p.get("fresh_dir"))
    from dagster import AssetKey

    from taxi_platform.assets import ingest_assets

    table = _schema(p).table
    keys = [AssetKey([layer, table]) for layer in INGEST_LAYERS]
    out = _materialize(ingest_assets, partition_key=p["month"], selection=keys)
    lake = out["assets"].get(f"lake/{table}", {})
    silver = out["assets"].get(f"silver/{table}", {})
    bronze = out["assets"].get(f"bronze/{table}", {})
    out.update(lake_unchanged=lake.get("unchanged"), bronze_unchanged=bronze.get("unchanged"),
               silver_unchanged=silver.get("unchanged"), rows_in=silver.get("rows_in"),
               rows_out=silver.get("dagster/row_count"))
    return out


def core_month(p: dict) -> dict:
    """The warehouse's load_bronze and build_silver on the file, without Dagster (and so without
    the GX bronze suite, which the bronze asset passes to load_bronze as its gate)."""
    if p.get("remove_file"):
        for suffix in ("", ".wal", ".lock"):
            Path(p["remove_file"] + suffix).unlink(missing_ok=True)
    from taxi_platform.resources import build_warehouse
    from taxi_platform.settings import Settings

    settings = Settings.from_env()
    warehouse = build_warehouse(settings)
    schema, month, path = _schema(p), p["month"], p["path"]
    name = Path(path).name
    began = time.perf_counter()
    bronze = warehouse.load_bronze(schema, month, name, path, settings.max_quarantine_fraction)
    after_bronze = time.perf_counter()
    silver = warehouse.build_silver(schema, month, name, settings.max_quarantine_fraction)
    ended = time.perf_counter()
    return {"seconds": ended - began, "steps": {"load_bronze": round(after_bronze - began, 3),
                                                "build_silver": round(ended - after_bronze, 3)},
            "rows_in": bronze.rows, "rows_out": silver.rows_out}


def bare_sql(path: str, table: str = "silver") -> str:
    """The bare DuckDB statement: ``CREATE TABLE AS SELECT`` over ``read_csv`` with every column
    typed by DuckDB's CSV reader as silver types it, plus the md5 unique_row_id written as the id
    contract says (taxi_platform/warehouse/port.py; for clean files it gives silver's ids). No
    bronze, no deduplication, no quarantine: a file with a value that does not type fails."""
    from taxi_platform.schemas import KEY_AMOUNTS, TIMESTAMP, YELLOW
    from taxi_platform.warehouse.duckdb.sql import SQL_TYPES, quoted

    schema = YELLOW
    required = [c for c in schema.columns if not c.optional]
    spec = "{" + ", ".join(f"'{c.name}': '{SQL_TYPES[c.type]}'" for c in required) + "}"

    def key(name: str) -> str:
        column = quoted(name)
        if schema.column(name).type == TIMESTAMP:
            return f"coalesce(strftime({column}, '%Y-%m-%d %H:%M:%S'), '')"
        if name in KEY_AMOUNTS:  # rounded half away from zero, two decimals, no -0.00
            return f"coalesce(CAST(round(CAST({column} AS DECIMAL(18, 4)), 2) AS DECIMAL(18, 2))::VARCHAR, '')"
        return f"coalesce(CAST({column} AS VARCHAR), '')"

    columns = ", ".join(f"{quoted(c.name)} AS {quoted(c.sql_name)}" for c in required)
    literal = "'" + str(path).replace("'", "''") + "'"
    return (f"CREATE TABLE {table} AS SELECT md5(concat_ws('|', {', '.join(key(c) for c in schema.key_columns)})) "
            f"AS unique_row_id, * FROM (SELECT {columns} FROM read_csv({literal}, header = true, "
            f"columns = {spec}, auto_detect = false, delim = ',', quote = '\"', escape = '\"'))")


def duckdb_bare(p: dict) -> dict:
    """The reference for DuckDB's raw -> silver: :func:`bare_sql` into a new DuckDB file, with
    the platform's memory limit (TAXI_DUCKDB_MEMORY_LIMIT)."""
    import duckdb

    from taxi_platform.settings import Settings

    target = Path(p["database"])
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".wal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    sql = bare_sql(p["path"])
    conn = duckdb.connect(str(target), config={"memory_limit": Settings.from_env().duckdb_memory_limit})
    try:
        began = time.perf_counter()
        conn.execute(sql)
        seconds = time.perf_counter() - began
        (rows, ids), = conn.execute("SELECT count(*), count(DISTINCT unique_row_id) FROM silver").fetchall()
    finally:
        conn.close()
    for suffix in ("", ".wal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    return {"seconds": seconds, "rows_in": rows, "rows_out": rows, "distinct_ids": ids}


def pyarrow_read(p: dict) -> dict:
    """The floor of a Parquet month: ``pyarrow.parquet.read_table`` of the file into memory."""
    import pyarrow.parquet as pq

    began = time.perf_counter()
    table = pq.read_table(p["path"])
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "rows_in": table.num_rows, "rows_out": table.num_rows,
            "arrow_bytes": table.nbytes}


def gx_checks(p: dict) -> dict:
    """The bronze and the silver suite on the month, through taxi_platform.checks' runner, as the
    asset checks run them: bronze's on the month's published load (the batch the gate
    validates), silver's on the month's file."""
    import great_expectations  # noqa: F401  (imported before the clock starts)

    from taxi_platform.checks.gx_context import open_context
    from taxi_platform.checks.gx_runner import validate_file, validate_load
    from taxi_platform.checks.gx_suites import bronze_suite, silver_suite
    from taxi_platform.resources import build_warehouse
    from taxi_platform.settings import Settings

    schema, month = _schema(p), p["month"]
    warehouse = build_warehouse(Settings.from_env())
    load = warehouse.published_load(schema, month)
    if load is None:
        raise RuntimeError(f"bronze.{schema.table} holds no load of {month}: load the month first")
    silver_file = warehouse.silver_file(schema, month) or load.filename
    began = time.perf_counter()
    with warehouse.exclusive(), open_context(warehouse) as context:
        opened = time.perf_counter()
        outcomes = [
            validate_load(context, bronze_suite(schema), month, load.filename, load.load_id, run_name=RUN_NAME),
            validate_file(context, silver_suite(schema), month, silver_file, run_name=RUN_NAME),
        ]
    seconds = time.perf_counter() - began
    return {"seconds": seconds,
            "steps": {"open_context": round(opened - began, 3),
                      **{o.suite: o.seconds for o in outcomes}},
            "rows_validated": [o.row_count for o in outcomes],
            "evaluated": sum(o.evaluated for o in outcomes),
            "failed": [f.message for o in outcomes for f in o.failures]}


def _everything():
    from taxi_platform.assets import ingest_assets
    from taxi_platform.assets.dbt import dbt_asset_defs

    return [*ingest_assets, *dbt_asset_defs]


def month_layers(p: dict) -> dict:
    """One month of both colours through Dagster, to silver (the ingest assets) or to the marts
    (the ingest assets and every dbt asset, dbt's tests included), a first load."""
    _fresh(p.get("fresh_dir"))
    if p["through"] == "silver":
        from taxi_platform.assets import ingest_assets

        out = _materialize(ingest_assets, partition_key=p["month"])
    else:
        out = _materialize(_everything(), partition_key=p["month"])
    return _with_counts(out, marts=p["through"] == "marts")


def demo_month(p: dict) -> dict:
    """One month raw -> marts as ``taxi-platform demo`` runs each month: the code location's
    implicit asset job (every asset, both colours, every asset check: the GX suites and dbt's
    tests) for the month's partition, in process, a first load."""
    _fresh(p.get("fresh_dir"))
    from taxi_platform.definitions import defs

    _import_ahead()
    instance = _instance()
    job = defs.resolve_implicit_global_asset_job_def()
    out = _timed(instance, lambda: job.execute_in_process(
        partition_key=p["month"], instance=instance, raise_on_error=False, tags={"taxi/demo": "true"}))
    return _with_counts(out)


# The old Kestra flow 04_postgres_taxi (yellow), as the reference: typed staging and main
# tables without keys or indexes, COPY into staging, UPDATE staging SET unique_row_id = md5(...),
# MERGE ... WHEN NOT MATCHED THEN INSERT. Its md5 is over the key columns' text, concatenated
# without separators; it does not deduplicate within the file.
KESTRA_COLUMNS = [
    ("VendorID", "text"), ("tpep_pickup_datetime", "timestamp"), ("tpep_dropoff_datetime", "timestamp"),
    ("passenger_count", "integer"), ("trip_distance", "double precision"), ("RatecodeID", "text"),
    ("store_and_fwd_flag", "text"), ("PULocationID", "text"), ("DOLocationID", "text"),
    ("payment_type", "integer"), ("fare_amount", "double precision"), ("extra", "double precision"),
    ("mta_tax", "double precision"), ("tip_amount", "double precision"), ("tolls_amount", "double precision"),
    ("improvement_surcharge", "double precision"), ("total_amount", "double precision"),
    ("congestion_surcharge", "double precision"),
]


def kestra_sql(filename: str, table: str = "yellow_tripdata") -> dict[str, list[str]]:
    staging = f"{table}_staging"
    typed = ",\n  ".join(f"{c} {t}" for c, t in KESTRA_COLUMNS)
    names = ", ".join(c for c, _ in KESTRA_COLUMNS)
    key = " ||\n    ".join(
        f"COALESCE(CAST({c} AS text), '')" for c in
        ("VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID", "DOLocationID",
         "fare_amount", "trip_distance"))
    return {
        "create_tables": [
            f"CREATE TABLE IF NOT EXISTS {table} (unique_row_id text, filename text,\n  {typed})",
            f"CREATE TABLE IF NOT EXISTS {staging} (unique_row_id text, filename text,\n  {typed})",
        ],
        "truncate_staging": [f"TRUNCATE TABLE {staging}"],
        "copy": [f"COPY {staging} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true)"],
        "update_md5": [(f"UPDATE {staging}\nSET unique_row_id = md5(\n    {key}\n  ),\n"
                        f"  filename = '{filename}'")],
        "merge": [(f"MERGE INTO {table} AS T\nUSING {staging} AS S\nON T.unique_row_id = S.unique_row_id\n"
                  f"WHEN NOT MATCHED THEN\n  INSERT (unique_row_id, filename, {names})\n"
                  f"  VALUES (S.unique_row_id, S.filename, "
                   + ", ".join(f"S.{c}" for c, _ in KESTRA_COLUMNS) + ")")],
    }


def kestra(p: dict) -> dict:
    """The Kestra-equivalent load of the month (see KESTRA_COLUMNS), one statement per task,
    each committed on its own as Kestra's JDBC tasks do. The file is gunzipped by
    ``gzip -dc`` piped into COPY FROM STDIN."""
    import psycopg2

    sql = kestra_sql(Path(p["path"]).name.removesuffix(".gz"))
    conn = psycopg2.connect("")  # the PG* variables
    conn.autocommit = True
    steps = {}
    began = time.perf_counter()
    with conn.cursor() as cur:
        for step, statements in sql.items():
            t = time.perf_counter()
            for statement in statements:
                if step == "copy":
                    gunzip = subprocess.Popen(["gzip", "-dc", p["path"]], stdout=subprocess.PIPE)
                    cur.copy_expert(statement, gunzip.stdout, size=1 << 20)
                    if gunzip.wait() != 0:
                        raise RuntimeError("gzip -dc failed")
                else:
                    cur.execute(statement)
            steps[step] = round(time.perf_counter() - t, 3)
        seconds = time.perf_counter() - began
        cur.execute("SELECT count(*) FROM yellow_tripdata")
        rows_main = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM yellow_tripdata_staging")
        rows_staging = cur.fetchone()[0]
    conn.close()
    return {"seconds": seconds, "steps": steps, "rows_in": rows_staging, "rows_out": rows_main}


def backfill_single_run(p: dict) -> dict:
    """raw -> marts for a month range as one run (BackfillPolicy.single_run: the partition
    range tags, as `dagster asset materialize --partition-range` sets them)."""
    _fresh(p.get("fresh_dir"))
    assets = _everything()
    months = p["months"]
    out = _materialize(assets, tags={"dagster/asset_partition_range_start": months[0],
                                     "dagster/asset_partition_range_end": months[-1]})
    return _with_counts(out)


def backfill_month_by_month(p: dict) -> dict:
    """The same months as one run each, in order, into the same warehouse: ``seconds`` is the
    sum of the runs (one process: no per-run process start-up, which a queued backfill pays)."""
    _fresh(p.get("fresh_dir"))
    assets = _everything()
    runs = {}
    for month in p["months"]:
        runs[month] = _materialize(assets, partition_key=month)
    out = {"seconds": sum(r["seconds"] for r in runs.values()),
           "per_month": {m: round(r["seconds"], 3) for m, r in runs.items()},
           "steps": _sum_steps(r["steps"] for r in runs.values())}
    return _with_counts(out)


def _sum_steps(step_dicts) -> dict[str, float]:
    total: dict[str, float] = {}
    for steps in step_dicts:
        for k, v in steps.items():
            total[k] = round(total.get(k, 0.0) + v, 3)
    return total


def _with_counts(out: dict, marts: bool = True) -> dict:
    """The rows the run left in silver (both colours) and, when it went to the marts, in
    gold.fct_trips and the mart."""
    from taxi_platform.resources import build_warehouse
    from taxi_platform.settings import Settings

    warehouse = build_warehouse(Settings.from_env())
    (silver,), = warehouse.query("SELECT (SELECT count(*) FROM silver.yellow_tripdata) "
                                 "+ (SELECT count(*) FROM silver.green_tripdata)")
    out.update(rows_silver=silver)
    if marts:
        (fct,), = warehouse.query("SELECT count(*) FROM gold.fct_trips")
        (mart,), = warehouse.query("SELECT coalesce(sum(total_monthly_trips), 0) FROM marts.dm_monthly_zone_revenue")
        out.update(rows_fct_trips=fct, mart_trips=int(mart))
    out.pop("assets", None)
    return out


WORKERS = {f.__name__: f for f in (dagster_month, core_month, duckdb_bare, pyarrow_read, gx_checks, kestra,
                                   month_layers, demo_month, backfill_single_run, backfill_month_by_month)}


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = WORKERS[spec["kind"]](spec["params"])
        code = 0
    except BaseException as exc:  # noqa: BLE001  (reported to the orchestrator, which carries on)
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        code = 1
    Path(spec["result"]).write_text(json.dumps(result, default=str))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown (thread pools, atexit): not part of the work
