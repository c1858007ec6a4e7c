"""The benchmark harness's report (benchmarks/report.py, notes.py, figures.py) written from made-up
results, in process: every target is judged from the medians, the notes follow the figures, and the
harness's modules import one way and nothing of the tests. The harness run end to end on tiny
months is tests/integration/test_benchmarks.py. No timing is asserted: a benchmark's figures
belong in benchmarks/RESULTS.md, not in a test."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmarks import figures, report, run
from benchmarks.notes import notes

BENCHMARKS = Path(run.__file__).resolve().parent
MiB = 2**20


def _run(seconds: float, *, cpu: float | None = None, peak_mib: int = 300, result: dict | None = None,
         error: str | None = None) -> dict:
    res = {"seconds": seconds, **(result or {})}
    if error:
        res = {"error": error}
    return {"seconds": None if error else seconds, "result": res, "log": "logs/x.log",
            "child": {"wall_seconds": seconds + 3, "returncode": 1 if error else 0,
                      "maxrss_bytes": peak_mib * MiB, "tree_peak_bytes": peak_mib * MiB, "server_peak_bytes": 0,
                      "combined_peak_bytes": peak_mib * MiB, "cpu_seconds": cpu if cpu is not None else seconds,
                      "server_cpu_seconds": 0.0, "other_cores": 0.05, "samples": 10}}


def _m(mid: str, runs: list[dict], rows: int = 1000) -> dict:
    _, title, source = run.MEASUREMENTS[mid]
    return {"title": title, "input": source, "rows": rows, "runs": runs}


def _dagster_steps(bronze: float, silver: float) -> dict:
    return {"steps": {"raw__yellow_tripdata": 0.3, "lake__yellow_tripdata": 0.1,
                      "bronze__yellow_tripdata": bronze, "silver__yellow_tripdata": silver},
            "steps_span": bronze + silver + 0.4, "rows_in": 1000, "rows_out": 998,
            "lake_unchanged": False, "bronze_unchanged": False, "silver_unchanged": False}


def results() -> dict:
    """A full run's results as run.py records them, with round figures."""
    rerun = {**_dagster_steps(0.1, 0.5), "lake_unchanged": True, "bronze_unchanged": True, "silver_unchanged": True}
    marts_steps = {"raw__yellow_tripdata": 0.3, "bronze__yellow_tripdata": 4.0, "silver__yellow_tripdata": 3.0,
                   "silver__yellow_tripdata_gx_silver_suite": 1.0, "dbt_reference_assets": 8.0,
                   "dbt_trip_and_mart_assets": 16.0}
    counts = {"rows_silver": 3300, "rows_fct_trips": 3300, "mart_trips": 3300}
    ms = {
        "floor": _m("floor", [_run(3.0), _run(3.2), _run(3.1)]),
        "duckdb_bare": _m("duckdb_bare", [_run(10.0, result={"rows_in": 1000, "rows_out": 1000,
                                                             "distinct_ids": 998})]),
        "duckdb_dagster": _m("duckdb_dagster", [_run(15.0, result=_dagster_steps(8.0, 6.0)),
                                                _run(14.0, result=_dagster_steps(7.5, 6.0))]),
        "duckdb_core": _m("duckdb_core", [_run(13.0, result={"steps": {"load_bronze": 7.0, "build_silver": 6.0}})]),
        "duckdb_rerun": _m("duckdb_rerun", [_run(1.4, result=rerun)]),
        "gx": _m("gx", [_run(1.2, result={"steps": {"open_context": 0.1, "bronze_yellow_tripdata": 0.8},
                                          "rows_validated": [1000, 998], "evaluated": 14, "failed": []})]),
        "pg_dagster": _m("pg_dagster", [_run(50.0, result=_dagster_steps(12.0, 37.0))]),
        "kestra_first": _m("kestra_first", [_run(30.0, result={"steps": {"copy": 9.0, "merge": 11.0}})]),
        "kestra_rerun": _m("kestra_rerun", [_run(40.0)]),
        "parquet_floor": _m("parquet_floor", [_run(2.0, result={"rows_in": 3000, "arrow_bytes": 5 * MiB})]),
        "parquet_duckdb": _m("parquet_duckdb", [_run(5.0, result=_dagster_steps(3.0, 1.5))]),
        "parquet_pg": _m("parquet_pg", [_run(25.0, result=_dagster_steps(15.0, 9.0)),
                                        _run(0.0, error="RuntimeError: the run failed")]),
        "marts_demo": _m("marts_demo", [_run(30.0, result={"steps": marts_steps, **counts})]),
        "silver_month": _m("silver_month", [_run(8.0, result={"rows_silver": 3300})]),
        "marts_month": _m("marts_month", [_run(32.0, result={"steps": marts_steps, **counts})]),
        "backfill_single_run": _m("backfill_single_run", [_run(50.0, peak_mib=1700)]),
        "backfill_by_month": _m("backfill_by_month", [_run(300.0, result={"per_month": {"2019-01": 25.0}})]),
    }
    return {
        "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:20:00+00:00",
        "command": "python -m benchmarks.run", "month": run.MONTH, "notes": [],
        "config": {"repeat": 3, "long_repeat": 1, "low_memory_limit": "1GB"},
        "machine": {"cpu_model": "test cpu", "cores": 2, "usable_cores": 2, "memory_bytes": 8 * 2**30,
                    "os": "Linux", "python": "3.11", "load_average_start": [0.1, 0.1, 0.1],
                    "load_average_end": [0.2, 0.2, 0.2]},
        "versions": {"duckdb": "2.0.0", "repository": "abc123"},
        "inputs": {
            "month": {"rows": 1000, "bytes": 3 * MiB, "csv_bytes": 9 * MiB},
            "parquet": {"month": run.PARQUET_MONTH, "rows": 3000, "bytes": 2 * MiB},
            "demo": {"month": run.MONTH, "yellow_rows": 20_000, "green_rows": 20_000, "rows": 40_000, "bytes": MiB},
            "marts": {"month": run.MONTH, "yellow_rows": 3000, "green_rows": 300, "rows": 3300, "bytes": MiB},
            "backfill": {"months": ["2019-01", "2019-02"], "yellow_rows": 2000, "green_rows": 200, "rows": 4400,
                         "bytes": MiB},
        },
        "measurements": ms,
        "kestra_sql": {"copy": ["COPY yellow_tripdata_staging FROM STDIN"]},
        "bare_sql": "CREATE TABLE silver AS SELECT 1",
    }


def test_every_target_is_judged_from_the_medians():
    rows = {t["target"]: t for t in figures.targets(results())}
    assert list(rows) == [
        "DuckDB raw → silver ≤ 2.0× floor", "DuckDB raw → silver ≤ 1.3× bare DuckDB CREATE TABLE AS",
        "unchanged re-run ≤ 0.5× floor", "PostgreSQL raw → silver ≤ 1.0× Kestra baseline",
        "GX checks ≤ 1.0× floor", "peak RSS ≤ 1.5 GB (each measurement)",
        "Parquet month: DuckDB raw → silver ≤ 3.0× the pyarrow read",
        "raw → marts ≤ 2.0× raw → silver (one month)", "2-month backfill ≤ 1.3× the sum of its single months",
        "demo month raw → marts ≤ 8 s"]
    assert rows["DuckDB raw → silver ≤ 2.0× floor"]["ratio"] == pytest.approx(14.5 / 3.1)
    assert rows["DuckDB raw → silver ≤ 2.0× floor"]["status"].startswith("**missed** by 2.3×")
    assert rows["DuckDB raw → silver ≤ 1.3× bare DuckDB CREATE TABLE AS"]["ratio"] == pytest.approx(1.45)
    assert rows["unchanged re-run ≤ 0.5× floor"]["status"] == "**met** (0.45× ≤ 0.5×)"
    assert rows["Parquet month: DuckDB raw → silver ≤ 3.0× the pyarrow read"]["status"] == "**met** (2.50× ≤ 3.0×)"
    assert rows["raw → marts ≤ 2.0× raw → silver (one month)"]["ratio"] == pytest.approx(4.0)
    assert rows["2-month backfill ≤ 1.3× the sum of its single months"]["ratio"] == pytest.approx(50 / 300)
    assert rows["demo month raw → marts ≤ 8 s"]["status"] == "**missed** by 3.8×: 30.00 s vs ≤ 8 s (22.0 s too slow)"
    peak = rows["peak RSS ≤ 1.5 GB (each measurement)"]
    assert "backfill_single_run" in peak["status"] and peak["status"].startswith("**missed**")
    # gzip uses one core: against the floor the CPU column is a range, elsewhere one ratio
    assert "–" in rows["GX checks ≤ 1.0× floor"]["cpu"] and "–" not in rows[
        "PostgreSQL raw → silver ≤ 1.0× Kestra baseline"]["cpu"]


def test_a_target_without_both_sides_is_not_measured():
    partial = results()
    del partial["measurements"]["duckdb_bare"], partial["measurements"]["silver_month"]
    rows = {t["id"]: t for t in figures.targets(partial)}
    assert rows["duckdb_dagster/duckdb_bare"]["status"] == "not measured"
    assert rows["marts_month/silver_month"]["measured"] == "not measured"
    assert rows["duckdb_dagster/floor"]["ratio"] is not None


def test_the_report_has_every_target_measurement_and_the_notes():
    text = report.render(results())
    for t in figures.targets(results()):
        assert f"| {t['target']} |" in text
    for mid, (_, title, _) in run.MEASUREMENTS.items():
        if mid in results()["measurements"]:
            assert f"| {title} |" in text, mid
    # each measurement against the floor of its own input; none for the inputs without one
    line = next(row for row in text.splitlines() if row.startswith("| Parquet month raw → silver, DuckDB"))
    assert "| 2.50× |" in line
    line = next(row for row in text.splitlines() if row.startswith("| demo month raw → marts, DuckDB"))
    assert line.split(" | ")[4] == "—"
    assert "↳ failed: RuntimeError: the run failed" in text
    for heading in ("## Targets", "## Measurements", "## Where the time goes", "## Notes on the targets",
                    "## The Kestra-equivalent baseline", "## The bare DuckDB statement"):
        assert heading in text
    assert "- **Parquet month**: yellow 2024-03" in text and "- **Demo month**: 2019-01, 20,000 yellow" in text


def test_the_notes_follow_the_figures():
    text = "\n".join(notes(results()))
    assert "**DuckDB raw → silver** (4.7× the floor and 1.45× the bare statement)" in text
    assert "998 distinct ids, silver kept 998 rows" in text
    assert "**Parquet month**" in text and "DuckDB 5.0 s, 2.5×" in text and "PostgreSQL 25.0 s, 12.5×" in text
    # raw -> marts: ingest and dbt steps apart, the GX check step neither
    assert "raw → marts 32.0 s, of which the ingest steps 7.3 s and dbt 24.0 s" in text
    assert "ingest steps 7.3 s, dbt 24.0 s, asset checks (the GX suites) 1.0 s" in text
    assert "fork server" in text  # the marts target is missed: why
    assert "**Peak memory**: over 1.5 GiB in backfill raw → marts" in text
    assert "**Backfill** (0.17× the sum of single months)" in text
    met = results()
    met["measurements"]["marts_month"]["runs"] = [_run(10.0, result=met["measurements"]["marts_month"]["runs"][0]
                                                        ["result"])]
    assert "What would help next" not in "\n".join(n for n in notes(met) if "raw → marts vs" in n)


def test_results_without_inputs_recorded_are_still_reported():
    """results.json of a run before the inputs were recorded (``--report-only`` rewrites it)."""
    old = results()
    for m in old["measurements"].values():
        del m["input"]
    assert figures.floor_of(old, "duckdb_dagster") == "floor"
    assert figures.floor_of(old, "parquet_pg") == "parquet_floor"
    assert figures.floor_of(old, "backfill_by_month") is None and figures.floor_of(old, "floor") is None
    assert report.render(old) == report.render(results())


def test_groups_and_ids_select_measurements():
    def selected(*argv: str) -> list[str]:
        return run._selected(run.parse_args(list(argv)))

    everything = selected()
    assert "pg_core" not in everything and "pg_rerun" not in everything  # off by default
    assert {"duckdb_bare", "parquet_floor", "parquet_duckdb", "parquet_pg", "marts_demo", "silver_month",
            "marts_month"} <= set(everything)
    assert selected("--only", "parquet") == ["parquet_floor", "parquet_duckdb", "parquet_pg"]
    assert "parquet_pg" not in selected("--skip", "postgres")  # it is in both groups
    assert selected("--only", "postgres", "--also", "pg_core") == ["pg_dagster", "pg_core", "parquet_pg"]
    quick = run.parse_args(["--quick", "--rows", "500"])
    assert (quick.rows, quick.repeat, quick.parquet_rows, quick.marts_rows) == (500, 1, 100_000, 20_000)
    assert quick.output.name == "RESULTS-quick.md"
    full = run.parse_args([])
    assert (full.rows, full.parquet_rows, full.marts_rows, full.demo_rows) == (7_000_000, 3_000_000, 300_000,
                                                                                20_000)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_benchmarks_import_one_way_and_stand_on_the_product_alone():
    modules = {p.stem: _imports(p) for p in BENCHMARKS.glob("*.py") if p.stem != "__init__"}
    graph = {name: {other for other in modules if f"benchmarks.{other}" in found}
             for name, found in modules.items()}
    assert graph["figures"] == set() and graph["notes"] == {"figures"}
    assert graph["report"] == {"figures", "notes"} and graph["workers"] == set() and graph["measure"] == set()

    def reaches(start: str, target: str, seen: frozenset = frozenset()) -> bool:
        return any(n == target or (n not in seen and reaches(n, target, seen | {n})) for n in graph[start])

    assert not [name for name in graph if reaches(name, name)], f"an import cycle in benchmarks/: {graph}"
    for name, found in modules.items():
        assert not [m for m in found if m == "tests" or m.startswith("tests.")], f"benchmarks/{name}.py imports tests"
