"""Figures over the collected results (``work/results.json``): medians, CPU, peak memory, step
times, and the targets with their verdicts.

The bottom of the report's modules: ``run`` -> ``report`` -> ``notes`` -> ``figures`` (each
imports only the ones to its right), and this one imports nothing from ``benchmarks``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

GiB = 2**30
PEAK_LIMIT = 1.5 * GiB
Y = "yellow_tripdata"

# The floor of each input a measurement reads (``results["measurements"][id]["input"]``): the
# least any load of that file must do, the "× its floor" column of the report.
FLOORS = {"month": "floor", "parquet": "parquet_floor"}


@dataclass(frozen=True)
class Target:
    """``numerator`` (a measurement id) ≤ ``limit`` × ``denominator`` (another), medians of wall time."""

    name: str
    numerator: str
    denominator: str
    denominator_name: str  # how the report calls the denominator
    limit: float
    single_core: bool = False  # the denominator uses one core (gzip): the CPU column is a range


# The targets, in the order RESULTS.md lists them (the peak-memory target comes after the first
# four). benchmarks/README.md lists the same.
TARGETS = [
    Target("DuckDB raw → silver ≤ 2.0× floor", "duckdb_dagster", "floor", "floor", 2.0, single_core=True),
    Target("DuckDB raw → silver ≤ 1.3× bare DuckDB CREATE TABLE AS", "duckdb_dagster", "duckdb_bare",
           "bare DuckDB", 1.3),
    Target("unchanged re-run ≤ 0.5× floor", "duckdb_rerun", "floor", "floor", 0.5, single_core=True),
    Target("PostgreSQL raw → silver ≤ 1.0× Kestra baseline", "pg_dagster", "kestra_first",
           "Kestra first load", 1.0),
    Target("GX checks ≤ 1.0× floor", "gx", "floor", "floor", 1.0, single_core=True),
]
TARGETS_AFTER_PEAK = [
    Target("Parquet month: DuckDB raw → silver ≤ 3.0× the pyarrow read", "parquet_duckdb", "parquet_floor",
           "pyarrow read", 3.0),
    Target("raw → marts ≤ 2.0× raw → silver (one month)", "marts_month", "silver_month",
           "raw → silver", 2.0),
    Target("{months}-month backfill ≤ 1.3× the sum of its single months", "backfill_single_run",
           "backfill_by_month", "sum of single months", 1.3),
]
# Targets in seconds, not ratios: (name, measurement, limit in seconds). Listed last.
SECONDS_TARGETS = [
    ("demo month raw → marts ≤ 8 s", "marts_demo", 8.0),
]


# -- figures of one measurement ---------------------------------------------------------------

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


def step_medians(m: dict | None) -> dict[str, float]:
    keys: dict[str, list[float]] = {}
    for r in ok_runs(m):
        for k, v in (r["result"].get("steps") or {}).items():
            keys.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in keys.items()}


def step(steps: dict[str, float], layer: str, table: str = Y) -> float | None:
    """A layer's step of ``table`` (``bronze__yellow_tripdata``) among Dagster's step keys."""
    for key, value in steps.items():
        if key == f"{layer}__{table}" or key == f"{layer}_{table}":
            return value
    return None


def input_of(mid: str, m: dict | None) -> str:
    """Which input a measurement reads: ``month`` (the CSV month), ``parquet``, ``demo``,
    ``marts`` (the raw → marts month) or ``backfill`` (recorded by run.py; guessed from the id
    for results written before it was)."""
    if m and m.get("input"):
        return m["input"]
    for prefix, name in (("backfill", "backfill"), ("parquet", "parquet"), ("marts_demo", "demo"),
                         ("marts_month", "marts"), ("silver_month", "marts")):
        if mid.startswith(prefix):
            return name
    return "month"


def floor_of(results: dict, mid: str) -> str | None:
    """The id of the floor of the input ``mid`` reads, when it has one (and is not it)."""
    floor = FLOORS.get(input_of(mid, results["measurements"].get(mid)))
    return floor if floor != mid else None


def others(results: dict) -> list[float]:
    """Cores busy with other work during each run (see measure.py)."""
    return [r["child"]["other_cores"] for m in results["measurements"].values() for r in m["runs"]
            if r["child"].get("other_cores") is not None]


# -- formatting -------------------------------------------------------------------------------

def s(x: float | None) -> str:
    return "—" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def mib(b: int) -> str:
    return f"{b / 2**20:,.0f} MiB"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def x(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def rate(rows: int | None, seconds: float | None) -> str:
    return "—" if not rows or not seconds else f"{rows / seconds:,.0f}"


# -- targets ----------------------------------------------------------------------------------

def _ratio_row(results: dict, t: Target) -> dict:
    ms = results["measurements"]
    num, den = median(ms.get(t.numerator)), median(ms.get(t.denominator))
    r = ratio(num, den)
    best = ratio(fastest(ms.get(t.numerator)), fastest(ms.get(t.denominator)))
    cpu_num, cpu_den = cpu(ms.get(t.numerator)), cpu(ms.get(t.denominator))
    cpu_text, views = "—", [v for v in (r, best) if v is not None]
    if cpu_num and cpu_den:
        if t.single_core:
            # gzip uses one core: on an idle machine its wall time is its CPU time, and the
            # platform's wall time lies between its CPU time spread over every core and all of it.
            cores = results.get("machine", {}).get("usable_cores") or 1
            cpu_text = f"{cpu_num / cores / cpu_den:.1f}×–{cpu_num / cpu_den:.1f}×"
            views += [cpu_num / cores / cpu_den, cpu_num / cpu_den]
        else:
            cpu_text = f"{cpu_num / cpu_den:.2f}×"
            views.append(cpu_num / cpu_den)
    months = len(results.get("inputs", {}).get("backfill", {}).get("months", [])) or 12
    row = {"target": t.name.format(months=months), "id": f"{t.numerator}/{t.denominator}", "limit": t.limit, "ratio": r,
           "fastest": x(best), "cpu": cpu_text, "agree": len({v <= t.limit for v in views}) <= 1,
           "measured": (f"{s(num)} s vs {t.denominator_name} {s(den)} s" if num is not None and den
                        else "not measured")}
    if r is None:
        row["status"] = "not measured"
    elif r <= t.limit:
        row["status"] = f"**met** ({r:.2f}× ≤ {t.limit}×)"
    else:
        row["status"] = (f"**missed** by {r / t.limit:.1f}×: {r:.2f}× vs ≤ {t.limit}× "
                         f"({num - t.limit * den:.1f} s too slow)")
    return row


def _peak_row(results: dict) -> dict | None:
    ms = results["measurements"]
    measured = {mid: peak(m) for mid, m in ms.items() if m["runs"]}
    if not measured:
        return None
    worst = max(measured, key=measured.get)
    over = [mid for mid, b in measured.items() if b > PEAK_LIMIT]
    return {"target": "peak RSS ≤ 1.5 GB (each measurement)", "id": "peak", "limit": PEAK_LIMIT,
            "ratio": measured[worst] / PEAK_LIMIT, "fastest": "—", "cpu": "—", "agree": True,
            "measured": f"worst: {worst} {mib(measured[worst])}",
            "status": ("**met** (every measurement)" if not over else
                       f"**missed** by {measured[worst] / PEAK_LIMIT:.1f}× in {', '.join(over)} "
                       f"(worst {measured[worst] / GiB:.2f} GiB vs ≤ 1.5 GiB)")}


def targets(results: dict) -> list[dict]:
    """Every target's row of the report: target, measured, status, fastest, cpu, and ``ratio``,
    ``limit``, ``agree`` (whether the medians, the fastest runs and CPU time give one verdict)."""
    rows = [_ratio_row(results, t) for t in TARGETS]
    peak_row = _peak_row(results)
    if peak_row:
        rows.append(peak_row)
    return (rows + [_ratio_row(results, t) for t in TARGETS_AFTER_PEAK]
            + [_seconds_row(results, *t) for t in SECONDS_TARGETS])


def _seconds_row(results: dict, name: str, mid: str, limit: float) -> dict:
    m = results["measurements"].get(mid)
    seconds, best = median(m), fastest(m)
    row = {"target": name, "id": mid, "limit": limit, "ratio": ratio(seconds, limit), "fastest": s(best) + " s"
           if best is not None else "—", "cpu": "—", "measured": f"{s(seconds)} s" if seconds is not None
           else "not measured", "agree": best is None or (best <= limit) == (seconds <= limit)}
    if seconds is None:
        row["status"] = "not measured"
    elif seconds <= limit:
        row["status"] = f"**met** ({seconds:.2f} s ≤ {limit:g} s)"
    else:
        row["status"] = f"**missed** by {seconds / limit:.1f}×: {seconds:.2f} s vs ≤ {limit:g} s ({seconds - limit:.1f} s too slow)"
    return row


def target(results: dict, numerator: str, denominator: str) -> dict | None:
    """The row of the target ``numerator`` ≤ limit × ``denominator``."""
    return next((t for t in targets(results) if t["id"] == f"{numerator}/{denominator}"), None)
