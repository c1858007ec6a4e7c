"""``make bench``: the platform's benchmarks at the size of a real month; writes RESULTS.md.

    python -m benchmarks.run                    # full run: 7M-row month, 3 runs each (25-40 min on 2 cores)
    python -m benchmarks.run --quick            # smoke run: small months, 1 run each (about 10 min)
    python -m benchmarks.run --only floor,duckdb --repeat 5
    python -m benchmarks.run --only older_layouts   # a 14M-row 2009-layout month placed in zones
    python -m benchmarks.run --report-only      # rewrite the report from the last results.json

Every measured thing runs in a child process of its own (time, peak memory, CPU: see
benchmarks/measure.py; what runs inside: benchmarks/workers.py); this process only prepares
inputs and state, starts the children and writes the report (benchmarks/report.py).
See benchmarks/README.md for each measurement and every flag.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from taxi_platform.local_postgres import NEWEST, VERSIONS
from taxi_platform.settings import Settings

REPO = Path(__file__).resolve().parents[1]
HERE = REPO / "benchmarks"
MONTH = "2019-01"  # the measured CSV month (2019 layout), and the demo's and raw -> marts month
PARQUET_MONTH = "2024-03"  # the measured Parquet month (the TLC's 2024 types)
BACKFILL_START = "2019-01"
OLDER_MONTH = "2009-01"  # the measured month in an older yellow layout (2009's: coordinates, not zones)
OLDER_MONTH_SECONDS = 300  # "a 14M-row month placed in minutes": logged by the run (figures.py's targets are ratios)

# id -> (groups, title, input). Groups are what --only/--skip select (ids work too). The input is
# the file the measurement reads: "month" (the CSV month), "parquet", "demo", "marts", "backfill",
# "older" (the 2009-layout Parquet month), "points" (random coordinates, no file).
MEASUREMENTS = {
    "floor": (("floor",), "floor: `gzip -dc file > /dev/null`", "month"),
    "duckdb_bare": (("duckdb",), "bare DuckDB: CREATE TABLE AS SELECT, typed columns + md5 id (no bronze, no dedupe)",
                    "month"),
    "duckdb_dagster": (("duckdb",), "raw → silver, DuckDB, real assets through Dagster (first load)", "month"),
    "duckdb_core": (("duckdb",), "raw → silver, DuckDB, core functions only (load_bronze + build_silver)",
                    "month"),
    "duckdb_rerun": (("rerun",), "unchanged month re-run, DuckDB, through Dagster", "month"),
    "duckdb_dagster_lowmem": (("memory",), "raw → silver, DuckDB, through Dagster, lower DuckDB memory limit",
                              "month"),
    "gx": (("gx",), "GX checks: bronze + silver suites on the month (DuckDB)", "month"),
    "pg_dagster": (("postgres",), "raw → silver, PostgreSQL, real assets through Dagster (first load)", "month"),
    "pg_core": (("postgres",), "raw → silver, PostgreSQL, core functions only", "month"),
    "pg_rerun": (("postgres",), "unchanged month re-run, PostgreSQL, through Dagster", "month"),
    "kestra_first": (("kestra",), "Kestra-equivalent baseline, PostgreSQL, first load", "month"),
    "kestra_rerun": (("kestra",), "Kestra-equivalent baseline, PostgreSQL, re-run", "month"),
    "parquet_floor": (("parquet",), "Parquet month: `pyarrow.parquet.read_table` into memory", "parquet"),
    "parquet_duckdb": (("parquet",), "Parquet month raw → silver, DuckDB, real assets through Dagster",
                       "parquet"),
    "parquet_pg": (("parquet", "postgres"), "Parquet month raw → silver, PostgreSQL, real assets through Dagster",
                   "parquet"),
    "older_layout_month": (("older_layouts",), ("older yellow layout (2009) month mapped onto the contract, "
                                                "coordinates placed in zones (`contract_layout_of`)"), "older"),
    "zone_placement": (("older_layouts",), ("placing pickups and dropoffs in taxi zones alone (`zones.place`, "
                                            "random points)"), "points"),
    "marts_demo": (("marts",), "demo month raw → marts, DuckDB, the demo's asset job with every check", "demo"),
    "silver_month": (("marts",), "one month raw → silver, both colours, DuckDB, through Dagster", "marts"),
    "marts_month": (("marts",), "the same month raw → marts (ingest + dbt assets), DuckDB, through Dagster",
                    "marts"),
    "backfill_single_run": (("backfill",), "backfill raw → marts, DuckDB, one single run", "backfill"),
    "backfill_by_month": (("backfill",), "the same months as single-month runs (sum)", "backfill"),
}
# Measurements whose child runs a worker of benchmarks/zone_placement.py, not of workers.py.
OWN_MODULE_WORKERS = {"older_layout_month", "zone_placement"}
GROUPS = sorted({g for groups, _, _ in MEASUREMENTS.values() for g in groups})
# Run only when named in --only or --also: each costs minutes at 7M rows on a small machine.
DEFAULT_OFF = {"pg_core", "pg_rerun"}
# Minutes per run at full size: repeated --long-repeat times, not --repeat.
LONG = {"pg_dagster", "pg_core", "pg_rerun", "parquet_pg", "duckdb_dagster_lowmem", "backfill_single_run",
        "backfill_by_month", "older_layout_month"}
# Sizes: full run, and --quick (each overridable by its flag).
FULL = {"rows": 7_000_000, "repeat": 3, "parquet_rows": 3_000_000, "marts_rows": 300_000, "demo_rows": 20_000,
        "backfill_months": 12, "backfill_rows": 300_000, "older_rows": 14_000_000}
QUICK = {"rows": 200_000, "repeat": 1, "parquet_rows": 100_000, "marts_rows": 20_000, "demo_rows": 20_000,
         "backfill_months": 3, "backfill_rows": 20_000, "older_rows": 200_000}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
                        + " (each overridable), report to <work>/RESULTS-quick.md")
    p.add_argument("--rows", type=int, help=f"rows of the measured yellow CSV month (default {FULL['rows']})")
    p.add_argument("--repeat", type=int, help="runs of each measurement; the median is reported (default 3)")
    p.add_argument("--parquet-rows", type=int,
                   help=f"rows of the yellow Parquet month {PARQUET_MONTH} (default {FULL['parquet_rows']})")
    p.add_argument("--marts-rows", type=int,
                   help=f"yellow rows of the raw -> marts vs raw -> silver month (default {FULL['marts_rows']}; "
                        "green: a tenth)")
    p.add_argument("--demo-rows", type=int,
                   help=f"rows of each colour of the demo's month (default {FULL['demo_rows']}, as taxi-platform demo)")
    p.add_argument("--backfill-months", type=int, help="months in the backfill (default 12)")
    p.add_argument("--backfill-rows", type=int, help="yellow rows per backfill month (default 300000)")
    p.add_argument("--backfill-green-rows", type=int,
                   help="green rows per backfill month (default a tenth of --backfill-rows, as in 2019)")
    p.add_argument("--older-rows", type=int,
                   help=f"rows of the yellow {OLDER_MONTH} month in the 2009 layout, and of the random trips "
                        f"placed alone (default {FULL['older_rows']:,}: a 2009 month)")
    p.add_argument("--long-repeat", type=int,
                   help=f"runs of the long measurements ({', '.join(sorted(LONG))}; default 1)")
    p.add_argument("--low-memory-limit", default="512MB",
                   help="TAXI_DUCKDB_MEMORY_LIMIT of duckdb_dagster_lowmem (default 512MB; the platform's is "
                        f"{Settings.from_env({}).duckdb_memory_limit})")
    p.add_argument("--postgres-version", choices=VERSIONS, default=NEWEST,
                   help=f"major version of the local PostgreSQL server (default {NEWEST}; see "
                        "taxi_platform/local_postgres.py)")
    p.add_argument("--only", help=f"comma-separated groups ({', '.join(GROUPS)}) or measurement ids")
    p.add_argument("--also", help=f"add measurements that are off by default ({', '.join(sorted(DEFAULT_OFF))})")
    p.add_argument("--skip", help="comma-separated groups or ids to leave out")
    p.add_argument("--work-dir", type=Path, default=HERE / "work",
                   help="sources, state, logs, results.json (default benchmarks/work, gitignored)")
    p.add_argument("--output", type=Path, help="the report (default benchmarks/RESULTS.md; "
                                               "<work>/RESULTS-quick.md with --quick or --only/--skip)")
    p.add_argument("--keep-state", action="store_true",
                   help="keep the warehouses and data dirs under <work>/state (removed by default)")
    p.add_argument("--sample-interval", type=float, default=0.2, help="memory sampling period, seconds")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from <work>/results.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one measured child
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.backfill_green_rows is None:
        args.backfill_green_rows = max(1, args.backfill_rows // 10)
    if args.long_repeat is None:
        args.long_repeat = min(args.repeat, 1)
    if args.output is None:
        partial = args.quick or args.only or args.skip
        args.output = args.work_dir / "RESULTS-quick.md" if partial else HERE / "RESULTS.md"
    return args


def _selected(args) -> list[str]:
    def expand(text: str | None) -> set[str]:
        names = {n.strip() for n in (text or "").split(",") if n.strip()}
        unknown = names - set(GROUPS) - set(MEASUREMENTS)
        if unknown:
            sys.exit(f"unknown measurement(s) {sorted(unknown)}; groups: {GROUPS}; ids: {list(MEASUREMENTS)}")
        return {m for m, (groups, _, _) in MEASUREMENTS.items() if m in names or names & set(groups)}

    chosen = expand(args.only) if args.only else set(MEASUREMENTS) - DEFAULT_OFF
    if args.only:  # a group named in --only brings its default-off members only when named by id
        named = {n.strip() for n in args.only.split(",")}
        chosen = {m for m in chosen if m not in DEFAULT_OFF or m in named}
    chosen |= expand(args.also)
    return [m for m in MEASUREMENTS if m in chosen - expand(args.skip)]


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = args.work_dir.resolve()
        self.state = self.work / "state"
        self.logs = self.work / "logs"
        self.specs = self.work / "specs"
        for d in (self.work, self.logs, self.specs):
            d.mkdir(parents=True, exist_ok=True)
        self.dagster_home = self.work / "dagster_home"
        self.dagster_home.mkdir(exist_ok=True)
        (self.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        self.selected = _selected(args)
        self.results: dict = {
            "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.run", *sys.argv[1:]]),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                       if k not in ("worker", "report_only")},
            "month": MONTH,
            "measurements": {m: {"title": MEASUREMENTS[m][1], "input": MEASUREMENTS[m][2], "runs": []}
                             for m in self.selected},
            "inputs": {},
            "notes": [],
        }
        self._counter = 0
        self.month_file: Path | None = None
        self.parquet_file: Path | None = None
        self.older_file: Path | None = None

    # -- plumbing ------------------------------------------------------------------------
    def log(self, text: str) -> None:
        print(f"[{dt.datetime.now():%H:%M:%S}] {text}", flush=True)

    def env(self, data_dir: Path, source: Path, warehouse: str = "duckdb",
            pg: dict[str, str] | None = None, tlc: bool = False) -> dict[str, str]:
        """The child's environment: the platform's settings as in production, from nothing of
        this process's (TAXI_*, PG*, DAGSTER_* and GCP settings are dropped). ``tlc``: ``source``
        is a folder in the TLC's Parquet layout (TAXI_SOURCE=tlc), else the CSV mirror's."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TAXI_", "PG", "DAGSTER_", "GCP_", "GOOGLE_"))}
        env.update(TAXI_DATA_DIR=str(data_dir), TAXI_WAREHOUSE=warehouse,
                   DAGSTER_HOME=str(self.dagster_home), GX_ANALYTICS_ENABLED="false",
                   DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1",
                   PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
        if tlc:
            env.update(TAXI_SOURCE="tlc", TAXI_TLC_URL=str(source))
        else:
            env.update(TAXI_SOURCE="mirror", TAXI_SOURCE_URL=str(source))
        env.update(pg or {})
        return env

    def child(self, mid: str, kind: str, params: dict, env: dict[str, str], *, record: bool = True,
              server_roots: list[int] | None = None, rows: int | None = None) -> dict:
        """Run one worker in a child process; record it under ``mid`` unless ``record`` is false
        (a setup run that prepares state for another measurement)."""
        from benchmarks.measure import run_child

        self._counter += 1
        tag = f"{self._counter:03d}-{mid}" + ("" if record else "-setup")
        spec, result_path, log = (self.specs / f"{tag}.json", self.specs / f"{tag}.result.json",
                                  self.logs / f"{tag}.log")
        result_path.unlink(missing_ok=True)
        spec.write_text(json.dumps({"kind": kind, "params": params, "result": str(result_path)}))
        run = run_child([sys.executable, "-m", "benchmarks.run", "--worker", str(spec)], env=env, cwd=REPO,
                        log=log, server_roots=server_roots, interval=self.args.sample_interval)
        if result_path.is_file():
            result = json.loads(result_path.read_text())
        else:
            result = {"error": f"the child exited with {run.returncode} without a result; see {log}"}
        entry = {"seconds": result.get("seconds"), "child": run.as_dict(), "result": result,
                 "log": str(log.relative_to(self.work))}
        if "error" in result:
            self.log(f"  {mid}{'' if record else ' (setup)'} FAILED: {result['error'].splitlines()[0][:300]} "
                     f"(log: {log})")
        else:
            self.log(f"  {mid}{'' if record else ' (setup)'}: {result['seconds']:.2f}s "
                     f"(child {run.wall_seconds:.1f}s, peak {max(run.maxrss_bytes, run.combined_peak_bytes) / 2**20:,.0f} MiB, "
                     f"other work {run.other_cores or 0:.2f} cores)")
        if record:
            self.results["measurements"][mid]["runs"].append(entry)
            if rows is not None:
                self.results["measurements"][mid]["rows"] = rows
        return entry

    def wanted(self, *mids: str) -> bool:
        return any(m in self.selected for m in mids)

    def repeat(self, mid: str) -> int:
        return self.args.long_repeat if mid in LONG else self.args.repeat

    def save(self) -> None:
        (self.work / "results.json").write_text(json.dumps(self.results, indent=1, default=str))

    # -- inputs --------------------------------------------------------------------------
    def sample_source(self, out: Path, months: str, rows: int, colours: str = "yellow",
                      green_share: float = 1.0, fmt: str = "csv") -> float:
        """Write months with the project's own generator (`taxi-platform sample-source`)."""
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "taxi_platform.cli", "sample-source", "--months", months,
                        "--rows", str(rows), "--out", str(out), "--colours", colours,
                        "--green-share", repr(green_share), "--format", fmt],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=self.env(self.state / "gen", out))
        return time.perf_counter() - began

    def month_source(self) -> Path:
        root = self.work / "sources" / f"month-{self.args.rows}"
        path = root / "yellow" / f"yellow_tripdata_{MONTH}.csv.gz"
        info = {"path": str(path.relative_to(self.work)), "rows": self.args.rows, "reused": path.is_file()}
        if not path.is_file():  # files appear only when complete (written aside, renamed)
            self.log(f"generating the {self.args.rows:,}-row yellow {MONTH} into {root} ...")
            info["generated_seconds"] = round(self.sample_source(root, MONTH, self.args.rows), 1)
        info["bytes"] = path.stat().st_size
        sizes = root / "sizes.json"  # the CSV size, counted once per generated file
        known = json.loads(sizes.read_text()) if sizes.is_file() else {}
        if known.get("bytes") != info["bytes"]:
            known = {"bytes": info["bytes"], "csv_bytes": _gunzipped_size(path)}
            sizes.write_text(json.dumps(known))
        info["csv_bytes"] = known["csv_bytes"]
        self.results["inputs"]["month"] = info
        self.log(f"month file: {path} ({info['bytes']:,} bytes, {info['csv_bytes']:,} as CSV, "
                 f"{'reused' if info['reused'] else 'generated'})")
        self.month_file = path
        return root

    def parquet_source(self) -> Path:
        """The yellow PARQUET_MONTH in the TLC's layout (a flat folder: TAXI_TLC_URL)."""
        root, self.parquet_file = self._tlc_month("parquet", PARQUET_MONTH, self.args.parquet_rows, "Parquet file")
        return root

    def older_source(self) -> Path:
        """The yellow OLDER_MONTH in the TLC's 2009 layout (`write_month_parquet`: coordinates
        inside zones, 0/0 and far away), a flat folder as the TLC's."""
        root, self.older_file = self._tlc_month("older", OLDER_MONTH, self.args.older_rows,
                                                "older-layout file (2009 layout)")
        return root

    def _tlc_month(self, key: str, month: str, rows: int, what: str) -> tuple[Path, Path]:
        """A yellow month as the TLC publishes it (its layout for the month), generated once into
        ``sources/<key>-<rows>`` and reused; recorded in the inputs as ``key``. Returns (folder, file)."""
        root = self.work / "sources" / f"{key}-{rows}"
        path = root / f"yellow_tripdata_{month}.parquet"
        info = {"path": str(path.relative_to(self.work)), "month": month, "rows": rows, "reused": path.is_file()}
        if not path.is_file():
            self.log(f"generating the {rows:,}-row yellow {month} {what} into {root} ...")
            info["generated_seconds"] = round(self.sample_source(root, month, rows, fmt="parquet"), 1)
        info["bytes"] = path.stat().st_size
        self.results["inputs"][key] = info
        self.log(f"{what}: {path} ({info['bytes']:,} bytes, {'reused' if info['reused'] else 'generated'})")
        return root, path

    def pair_source(self, key: str, yellow_rows: int, green_rows: int) -> Path:
        """MONTH of both colours in the mirror's layout (``key``: ``demo`` or ``marts``)."""
        root = self.work / "sources" / f"{key}-{yellow_rows}-{green_rows}"
        files = [root / c / f"{c}_tripdata_{MONTH}.csv.gz" for c in ("yellow", "green")]
        info = {"path": str(root.relative_to(self.work)), "month": MONTH, "yellow_rows": yellow_rows,
                "green_rows": green_rows, "rows": yellow_rows + green_rows, "reused": all(f.is_file() for f in files)}
        if not info["reused"]:
            self.log(f"generating {MONTH} with {yellow_rows:,} yellow and {green_rows:,} green rows into {root} ...")
            info["generated_seconds"] = round(self.sample_source(
                root, MONTH, yellow_rows, "yellow,green", green_share=green_rows / yellow_rows), 1)
        info["bytes"] = sum(f.stat().st_size for f in files)
        self.results["inputs"][key] = info
        return root

    def backfill_months(self) -> list[str]:
        from taxi_platform.partitions import month_range

        start = dt.date(int(BACKFILL_START[:4]), int(BACKFILL_START[5:]), 1)
        last_index = start.year * 12 + start.month - 1 + self.args.backfill_months - 1
        return month_range(BACKFILL_START, f"{last_index // 12}-{last_index % 12 + 1:02d}")

    def backfill_source(self, months: list[str]) -> Path:
        a = self.args
        root = self.work / "sources" / f"backfill-{len(months)}x{a.backfill_rows}-{a.backfill_green_rows}"
        spans = f"{months[0]}..{months[-1]}"
        generated = 0.0
        for colour, rows in (("yellow", a.backfill_rows), ("green", a.backfill_green_rows)):
            if not all((root / colour / f"{colour}_tripdata_{m}.csv.gz").is_file() for m in months):
                self.log(f"generating {len(months)} {colour} months of {rows:,} rows into {root} ...")
                generated += self.sample_source(root, spans, rows, colour)
        self.results["inputs"]["backfill"] = {
            "path": str(root.relative_to(self.work)), "months": months, "yellow_rows": a.backfill_rows,
            "green_rows": a.backfill_green_rows,
            "rows": len(months) * (a.backfill_rows + a.backfill_green_rows),
            "bytes": sum(p.stat().st_size for p in root.rglob("*.csv.gz")),
            **({"generated_seconds": round(generated, 1)} if generated else {"reused": True})}
        return root

    # -- measurements --------------------------------------------------------------------
    def run(self) -> None:
        from benchmarks import report

        self.results["machine"] = report.machine_info()
        self.results["versions"] = report.versions()
        self.log(f"benchmarks: {', '.join(self.selected)}; {self.args.repeat} run(s) each, "
                 f"{self.args.long_repeat} of the long ones; "
                 f"work dir {self.work}")
        try:
            source = parquet = None
            if any(MEASUREMENTS[m][2] == "month" for m in self.selected):
                source = self.month_source()
                self.floor()
                self.duckdb(source)
            if any(MEASUREMENTS[m][2] == "parquet" for m in self.selected):
                parquet = self.parquet_source()
                self.parquet_duckdb(parquet)
            self.postgres(source, parquet)
            if self.wanted("older_layout_month", "zone_placement"):
                self.older_layouts()
            if self.wanted("marts_demo", "silver_month", "marts_month"):
                self.marts()
            if self.wanted("backfill_single_run", "backfill_by_month"):
                self.backfill()
        finally:
            self.results["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
            self.results["machine"]["load_average_end"] = os.getloadavg()
            self.save()
            if not self.args.keep_state:
                shutil.rmtree(self.state, ignore_errors=True)
        report.write(self.results, self.args.output)
        self.log(f"wrote {self.args.output}")

    def floor(self) -> None:
        if not self.wanted("floor"):
            return
        from benchmarks.measure import run_child

        self.log("floor: gzip -dc > /dev/null")
        for _ in range(self.repeat("floor")):
            run = run_child(["gzip", "-dc", str(self.month_file)], stdout=subprocess.DEVNULL,
                            interval=self.args.sample_interval)
            entry = {"seconds": run.wall_seconds, "child": run.as_dict(), "result": {"seconds": run.wall_seconds}}
            if run.returncode != 0:
                entry["result"]["error"] = f"gzip exited with {run.returncode}"
            self.results["measurements"]["floor"]["runs"].append(entry)
            self.results["measurements"]["floor"]["rows"] = self.args.rows
            self.log(f"  floor: {run.wall_seconds:.2f}s (peak {run.maxrss_bytes / 2**20:.0f} MiB)")
        self.save()

    def duckdb(self, source: Path) -> None:
        rows, repeat = self.args.rows, self.repeat
        data = self.state / "duckdb"
        env = self.env(data, source)
        month = {"month": MONTH}
        if self.wanted("duckdb_bare"):
            from benchmarks.workers import bare_sql

            self.log("bare DuckDB CREATE TABLE AS SELECT (typed columns + md5 id)")
            self.results["bare_sql"] = bare_sql(f"<{self.month_file.name}>")
            bare = self.state / "duckdb-bare"
            for _ in range(repeat("duckdb_bare")):
                self.child("duckdb_bare", "duckdb_bare",
                           {"path": str(self.month_file), "database": str(bare / "bare.duckdb")},
                           self.env(bare, source), rows=rows)
            self.save()
        if self.wanted("duckdb_core"):
            self.log("raw -> silver on DuckDB, core functions")
            core_data = self.state / "duckdb-core"
            core_env = self.env(core_data, source)
            for _ in range(repeat("duckdb_core")):
                self.child("duckdb_core", "core_month",
                           {**month, "path": str(self.month_file),
                            "remove_file": str(core_data / "warehouse.duckdb")}, core_env, rows=rows)
            self.save()
        if self.wanted("duckdb_dagster"):
            self.log("raw -> silver on DuckDB through Dagster (first load: empty data dir each run)")
            for _ in range(repeat("duckdb_dagster")):
                self.child("duckdb_dagster", "dagster_month", {**month, "fresh_dir": str(data)}, env, rows=rows)
            self.save()
        if self.wanted("duckdb_dagster_lowmem"):
            limit = self.args.low_memory_limit
            self.log(f"raw -> silver on DuckDB through Dagster with TAXI_DUCKDB_MEMORY_LIMIT={limit}")
            low = self.state / "duckdb-lowmem"
            for _ in range(repeat("duckdb_dagster_lowmem")):
                self.child("duckdb_dagster_lowmem", "dagster_month", {**month, "fresh_dir": str(low)},
                           {**self.env(low, source), "TAXI_DUCKDB_MEMORY_LIMIT": limit}, rows=rows)
            self.results["measurements"]["duckdb_dagster_lowmem"]["title"] += f" ({limit})"
            shutil.rmtree(low, ignore_errors=True)
            self.save()
        needs_state = self.wanted("duckdb_rerun", "gx")
        if needs_state and not (data / "warehouse.duckdb").is_file():
            self.log("loading the month once (setup for the re-run and GX measurements)")
            self.child("duckdb_dagster", "dagster_month", {**month, "fresh_dir": str(data)}, env, record=False)
        if self.wanted("duckdb_rerun"):
            self.log("unchanged month re-run on DuckDB through Dagster")
            for _ in range(repeat("duckdb_rerun")):
                self.child("duckdb_rerun", "dagster_month", month, env, rows=rows)
            self.save()
        if self.wanted("gx"):
            self.log("GX bronze and silver suites on the month")
            for _ in range(repeat("gx")):
                self.child("gx", "gx_checks", month, env, rows=rows)
            self.save()

    def parquet_duckdb(self, root: Path) -> None:
        rows = self.args.parquet_rows
        if self.wanted("parquet_floor"):
            self.log("Parquet floor: pyarrow.parquet.read_table")
            for _ in range(self.repeat("parquet_floor")):
                self.child("parquet_floor", "pyarrow_read", {"path": str(self.parquet_file)},
                           self.env(self.state / "parquet-floor", root, tlc=True), rows=rows)
            self.save()
        if self.wanted("parquet_duckdb"):
            self.log(f"Parquet month {PARQUET_MONTH} raw -> silver on DuckDB through Dagster (TAXI_SOURCE=tlc)")
            data = self.state / "parquet-duckdb"
            for _ in range(self.repeat("parquet_duckdb")):
                self.child("parquet_duckdb", "dagster_month", {"month": PARQUET_MONTH, "fresh_dir": str(data)},
                           self.env(data, root, tlc=True), rows=rows)
            shutil.rmtree(data, ignore_errors=True)
            self.save()

    def postgres(self, source: Path | None, parquet: Path | None) -> None:
        csv_ids = ("pg_dagster", "pg_core", "pg_rerun", "kestra_first", "kestra_rerun")
        if not (self.wanted(*csv_ids) and source) and not (self.wanted("parquet_pg") and parquet):
            return
        import psycopg2

        from benchmarks.measure import find_postmaster
        from taxi_platform.local_postgres import start_postgres

        version = self.args.postgres_version
        self.log(f"starting PostgreSQL {version} (taxi_platform/local_postgres.py)")
        server = start_postgres(version)
        databases: list[str] = []

        def create() -> tuple[str, dict[str, str]]:
            name = server.create_database("bench")
            databases.append(name)
            return name, server.env(name)

        def drop(name: str) -> None:
            server.drop_database(name)
            databases.remove(name)

        try:
            postmaster = find_postmaster(server.port)
            roots = [postmaster] if postmaster else []
            conn = psycopg2.connect(server.dsn())
            with conn.cursor() as cur:
                cur.execute("SELECT version()")
                self.results["versions"]["postgresql_server"] = cur.fetchone()[0]
                cur.execute("SELECT name, setting, unit FROM pg_settings WHERE name IN "
                            "('shared_buffers', 'work_mem', 'maintenance_work_mem', 'fsync', "
                            "'max_wal_size', 'synchronous_commit', 'max_parallel_workers_per_gather')")
                self.results["postgres_settings"] = {n: f"{s}{' × ' + u if u else ''}" for n, s, u in cur.fetchall()}
            conn.close()
            if source:
                self._postgres_month(source, roots, create, drop, server)
            if parquet and self.wanted("parquet_pg"):
                self.log(f"Parquet month {PARQUET_MONTH} raw -> silver on PostgreSQL through Dagster "
                         "(new database each run)")
                data = self.state / "parquet-postgres"
                for _ in range(self.repeat("parquet_pg")):
                    name, pg = create()
                    self.child("parquet_pg", "dagster_month", {"month": PARQUET_MONTH, "fresh_dir": str(data)},
                               self.env(data, parquet, "postgres", pg, tlc=True), server_roots=roots,
                               rows=self.args.parquet_rows)
                    drop(name)
                self.save()
        finally:
            for name in list(databases):  # noqa: PERF101  (drop() removes from it)
                with contextlib.suppress(psycopg2.Error):  # the server stops next anyway
                    drop(name)
            server.stop()

    def _postgres_month(self, source: Path, roots: list[int], create, drop, server) -> None:
        rows, repeat, month = self.args.rows, self.repeat, {"month": MONTH}
        data = self.state / "postgres"
        last_platform_db = None
        if self.wanted("pg_dagster"):
            self.log("raw -> silver on PostgreSQL through Dagster (first load: new database each run)")
            for _ in range(repeat("pg_dagster")):
                name, pg = create()
                self.child("pg_dagster", "dagster_month", {**month, "fresh_dir": str(data)},
                           self.env(data, source, "postgres", pg), server_roots=roots, rows=rows)
                if last_platform_db:
                    drop(last_platform_db)
                last_platform_db = name
            self.save()
        if self.wanted("pg_core"):
            self.log("raw -> silver on PostgreSQL, core functions")
            for _ in range(repeat("pg_core")):
                name, pg = create()
                self.child("pg_core", "core_month", {**month, "path": str(self.month_file)},
                           self.env(self.state / "postgres-core", source, "postgres", pg),
                           server_roots=roots, rows=rows)
                drop(name)
            self.save()
        if self.wanted("pg_rerun"):
            if last_platform_db is None:
                last_platform_db, pg = create()
                self.child("pg_dagster", "dagster_month", {**month, "fresh_dir": str(data)},
                           self.env(data, source, "postgres", pg), record=False, server_roots=roots)
            self.log("unchanged month re-run on PostgreSQL through Dagster")
            pg = server.env(last_platform_db)
            for _ in range(repeat("pg_rerun")):
                self.child("pg_rerun", "dagster_month", month, self.env(data, source, "postgres", pg),
                           server_roots=roots, rows=rows)
            self.save()
        if last_platform_db:
            drop(last_platform_db)
        if self.wanted("kestra_first", "kestra_rerun"):
            from benchmarks.workers import kestra_sql

            self.results["kestra_sql"] = kestra_sql(self.month_file.name.removesuffix(".gz"))

            def kestra_env(pg: dict[str, str]) -> dict[str, str]:
                return self.env(self.state / "kestra", source, "postgres", pg)

            params = {**month, "path": str(self.month_file)}
            last = None
            self.log("Kestra-equivalent baseline: first load (new database each run)")
            for _ in range(repeat("kestra_first") if self.wanted("kestra_first") else 1):
                name, pg = create()
                self.child("kestra_first", "kestra", params, kestra_env(pg), server_roots=roots,
                           rows=rows, record=self.wanted("kestra_first"))
                if last:
                    drop(last)
                last = name
            if self.wanted("kestra_rerun"):
                self.log("Kestra-equivalent baseline: re-run of the same month")
                for _ in range(repeat("kestra_rerun")):
                    self.child("kestra_rerun", "kestra", params, kestra_env(server.env(last)),
                               server_roots=roots, rows=rows)
            drop(last)
            self.save()

    def older_layouts(self) -> None:
        """A month in the 2009 yellow layout mapped onto the contract (the step before bronze
        lands such a file, zones placed included), and placing alone on as many random trips."""
        rows = self.args.older_rows
        if self.wanted("older_layout_month"):
            root = self.older_source()
            self.log(f"older layout: contract_layout_of on the {rows:,}-row {OLDER_MONTH} (2009 layout)")
            for _ in range(self.repeat("older_layout_month")):
                entry = self.child("older_layout_month", "older_layout_month",
                                   {"path": str(self.older_file), "month": OLDER_MONTH},
                                   self.env(self.state / "older", root, tlc=True), rows=rows)
                if entry["seconds"] is not None:
                    verdict = (("met" if entry["seconds"] <= OLDER_MONTH_SECONDS else "missed")
                               if rows >= FULL["older_rows"] else f"judged at {FULL['older_rows']:,} rows only")
                    self.log(f"  {rows / entry['seconds']:,.0f} rows/s; target a {FULL['older_rows']:,}-row "
                             f"month in <= {OLDER_MONTH_SECONDS} s: {verdict}")
            self.save()
        if self.wanted("zone_placement"):
            self.log(f"placing {rows:,} random trips' pickups and dropoffs in zones alone (zones.place)")
            for _ in range(self.repeat("zone_placement")):
                self.child("zone_placement", "zone_placement", {"rows": rows},
                           self.env(self.state / "placement", self.work), rows=rows)
            self.save()

    def marts(self) -> None:
        """The demo's month raw -> marts as the demo runs it, and raw -> marts against raw ->
        silver for one month (alternating, so that other work on the machine slows both alike)."""
        a = self.args
        if self.wanted("marts_demo"):
            source = self.pair_source("demo", a.demo_rows, a.demo_rows)  # the demo: both colours alike
            self.log(f"the demo's month ({a.demo_rows:,} rows a colour) raw -> marts as taxi-platform demo runs it")
            data = self.state / "demo"
            for _ in range(self.repeat("marts_demo")):
                self.child("marts_demo", "demo_month", {"month": MONTH, "fresh_dir": str(data)},
                           self.env(data, source), rows=2 * a.demo_rows)
            self.save()
        if self.wanted("silver_month", "marts_month"):
            green = max(1, a.marts_rows // 10)
            source = self.pair_source("marts", a.marts_rows, green)
            self.log(f"one month ({a.marts_rows:,} yellow + {green:,} green rows): raw -> silver vs raw -> marts, "
                     "alternating")
            for _ in range(max(self.repeat("silver_month"), self.repeat("marts_month"))):
                for mid, through in (("silver_month", "silver"), ("marts_month", "marts")):
                    if self.wanted(mid):
                        data = self.state / mid
                        self.child(mid, "month_layers", {"month": MONTH, "through": through, "fresh_dir": str(data)},
                                   self.env(data, source), rows=a.marts_rows + green)
                self.save()

    def backfill(self) -> None:
        months = self.backfill_months()
        source = self.backfill_source(months)
        rows = self.results["inputs"]["backfill"]["rows"]
        self.log(f"backfill of {len(months)} months ({months[0]}..{months[-1]}), raw -> marts on DuckDB: "
                 "one single run vs one run per month, alternating")
        single, by_month = self.state / "backfill-single", self.state / "backfill-months"
        params = {"months": months}
        for _ in range(self.args.long_repeat):
            if self.wanted("backfill_single_run"):
                self.child("backfill_single_run", "backfill_single_run", {**params, "fresh_dir": str(single)},
                           self.env(single, source), rows=rows)
            if self.wanted("backfill_by_month"):
                self.child("backfill_by_month", "backfill_month_by_month", {**params, "fresh_dir": str(by_month)},
                           self.env(by_month, source), rows=rows)
            self.save()


def _gunzipped_size(path: Path) -> int:
    """The uncompressed size (gzip's trailer holds it modulo 2**32; counted when larger)."""
    with subprocess.Popen(["gzip", "-dc", str(path)], stdout=subprocess.PIPE) as proc:
        total = 0
        while chunk := proc.stdout.read(1 << 20):
            total += len(chunk)
    return total


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        from benchmarks import workers

        if json.loads(Path(args.worker).read_text())["kind"] in OWN_MODULE_WORKERS:
            from benchmarks import zone_placement  # numpy, shapely, pyproj: only in these children

            workers.WORKERS.update(zone_placement.WORKERS)
        return workers.main(args.worker)
    if args.report_only:
        from benchmarks import report

        results = json.loads((args.work_dir / "results.json").read_text())
        results["rendered"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        report.write(results, args.output)
        print(f"wrote {args.output}")
        return 0
    Bench(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
