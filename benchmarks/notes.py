"""The "Notes on the targets" section of RESULTS.md: for each target, what the figures show
and, where it is missed, what was tried and what would help. Written from the measured
figures, so the numbers in the sentences are this run's."""

from __future__ import annotations

import statistics

from benchmarks.report import PEAK_LIMIT, GiB, cpu, fastest, median, peak, step_medians, targets

Y = "yellow_tripdata"


def _step(steps: dict[str, float], layer: str) -> float | None:
    for key, value in steps.items():
        if key.startswith(f"{layer}__") or key == f"{layer}_{Y}":
            return value
    return None


def _f(x: float | None) -> str:
    return "?" if x is None else f"{x:.1f}"


def notes(results: dict) -> list[str]:
    ms = results["measurements"]
    floor = median(ms.get("floor"))
    out: list[str] = []

    # 0. how disturbed the figures are
    floor_m = ms.get("floor")
    floor_cpu = cpu(floor_m)
    others = [r["child"]["other_cores"] for m in ms.values() for r in m["runs"]
              if r["child"].get("other_cores") is not None]
    if floor and floor_cpu and others and statistics.median(others) > 0.25:
        out += [f"- **Reading these figures.** Other work kept a median {statistics.median(others):.1f} of "
                f"the {results['machine']['usable_cores']} cores busy during the runs. The floor's median "
                f"wall time ({floor:.1f} s; fastest {fastest(floor_m):.1f} s) is {floor / floor_cpu:.1f}× its "
                f"CPU time ({floor_cpu:.1f} s, what gzip needs on an idle core), so ratios to the floor "
                "are flattering to the platform where the floor waited longer for a core than the "
                "measured run did; the targets table's CPU-time column is the steadier comparison "
                "(it counts the children's imports too: a few seconds, which matters for GX only). "
                "No figure here is good to a few percent. "
                + ("Every verdict in the targets table is the same on all three columns."
                   if all(t["agree"] for t in targets(results) if t["ratio"] is not None) else
                   "The verdict depends on the column for: " + ", ".join(
                       t["target"] for t in targets(results) if t["ratio"] is not None and not t["agree"])
                   + "."), ""]

    # 1. DuckDB raw -> silver
    dag, core = median(ms.get("duckdb_dagster")), median(ms.get("duckdb_core"))
    if dag is not None and floor:
        steps = step_medians(ms["duckdb_dagster"])
        core_steps = step_medians(ms["duckdb_core"]) if ms.get("duckdb_core") else {}
        raw, lake, bronze, silver = (_step(steps, layer) for layer in ("raw", "lake", "bronze", "silver"))
        text = (f"**DuckDB raw → silver** ({dag / floor:.1f}× the floor). In the Dagster run the raw step "
                f"(copy from the source with sha256) takes {_f(raw)} s, lake {_f(lake)} s, bronze {_f(bronze)} s, "
                f"silver {_f(silver)} s")
        if core is not None:
            text += (f"; the core functions alone take {core:.1f} s (load_bronze "
                     f"{_f(core_steps.get('load_bronze'))} s, build_silver {_f(core_steps.get('build_silver'))} s), "
                     + (f"so Dagster and the raw/lake steps add {dag - core:.1f} s" if dag >= core else
                        "no faster than the Dagster run: the wall times differ by the other work on the "
                        f"machine, the CPU times hardly (core {cpu(ms['duckdb_core']):.0f} s, Dagster "
                        f"{cpu(ms['duckdb_dagster']):.0f} s, imports included): the cost is the warehouse "
                        "work, not Dagster"))
        text += "."
        if dag / floor > 2.0:
            text += (" The floor is one gunzip; the platform parses the CSV, writes every row twice "
                     "(bronze as text, then silver typed) and hashes every key. What would help, in the "
                     "asset code (not changed here, it is owned elsewhere): load_bronze scans the month a "
                     "second time for its typing gate, and build_silver materializes `_typed` with the raw "
                     "text of every column beside the typed values, then `_keyed`, then inserts — typing, "
                     "gating and hashing straight from `read_csv` in one INSERT (keeping raw text only for "
                     "the few quarantined rows) would remove two full passes over 7M rows; and DuckDB "
                     "decompresses a `.gz` on one thread, so the parse cannot use the second core.")
        out += [f"- {text}", ""]

    # 2. unchanged re-run
    rerun = median(ms.get("duckdb_rerun"))
    if rerun is not None and floor:
        steps = step_medians(ms["duckdb_rerun"])
        runs = [r["result"] for r in ms["duckdb_rerun"]["runs"] if "error" not in r["result"]]
        unchanged = {r.get("lake_unchanged") for r in runs}
        text = (f"**Unchanged re-run** ({rerun / floor:.1f}× the floor). The lake step "
                + ("noticed the unchanged object by its checksum (`unchanged: True`) and did not rewrite it"
                   if unchanged == {True} else f"reported unchanged = {sorted(map(str, unchanged))}")
                + f"; the raw step copied and hashed the file again ({_f(_step(steps, 'raw'))} s).")
        skipped = {(r.get("bronze_unchanged"), r.get("silver_unchanged")) for r in runs}
        if skipped == {(True, True)}:
            text += (f" Bronze ({_f(_step(steps, 'bronze'))} s) and silver ({_f(_step(steps, 'silver'))} s) "
                     "skipped the month (`unchanged: true`): the same lake object was loaded before and a "
                     "count of the file's rows in bronze, silver and the quarantine equals the recorded "
                     "load (taxi_platform/assets/unchanged.py). Silver's time is mostly its whole-table "
                     "unique_row_id check, which still runs.")
        else:
            text += (f" Bronze ({_f(_step(steps, 'bronze'))} s) and silver ({_f(_step(steps, 'silver'))} s) "
                     f"reloaded the whole month (unchanged: {sorted(map(str, skipped))}).")
        if rerun / floor > 0.5 and skipped != {(True, True)}:
            text += (" What would hit the target: record, in the same transaction as each month's write, a "
                     "load record (file, lake sha256, bronze rows, silver rows) in the warehouse; bronze "
                     "and silver then skip when the lake object's sha256 equals the recorded one and a "
                     "count of the file's rows in bronze and silver equals the recorded counts (the proof "
                     "that silver is complete, a few milliseconds on the filename index/zone maps), and "
                     "raw skips the copy when the source answers with the same size and modification "
                     "time (or ETag) as its sidecar. The re-run then costs Dagster's own overhead plus two "
                     "count queries.")
        out += [f"- {text}", ""]

    # 3. PostgreSQL vs Kestra
    pg, kestra = median(ms.get("pg_dagster")), median(ms.get("kestra_first"))
    if pg is not None and kestra:
        steps = step_medians(ms["pg_dagster"])
        ksteps = step_medians(ms["kestra_first"])
        pg_core = median(ms.get("pg_core"))
        text = (f"**PostgreSQL raw → silver vs Kestra** ({pg / kestra:.2f}× the baseline's first load). "
                f"Platform steps: bronze {_f(_step(steps, 'bronze'))} s, silver {_f(_step(steps, 'silver'))} s"
                + (f" (core functions alone {pg_core:.1f} s)" if pg_core is not None else "")
                + "; Kestra: " + ", ".join(f"{k} {v:.1f} s" for k, v in ksteps.items()) + ".")
        krerun, pgrerun = median(ms.get("kestra_rerun")), median(ms.get("pg_rerun"))
        if krerun is not None:
            text += f" Re-run: Kestra {krerun:.1f} s" + (f", platform {pgrerun:.1f} s." if pgrerun else ".")
        if pg / kestra > 0.5:
            text += (" The platform does more than Kestra did (a typed silver with quarantine, a "
                     "contract-exact key, in-file deduplication kept in file order, a unique index), so "
                     "halving the baseline needs fewer passes over the month: COPY into an UNLOGGED "
                     "landing table (or straight into a typed temp table), compute gate, types and md5 in "
                     "one INSERT … SELECT instead of the gate scan plus the `_typed` and `_keyed` temp "
                     "tables, build the unique index after the insert on a first load, and raise "
                     "`work_mem`/`maintenance_work_mem` for the DISTINCT ON sort and the index build "
                     "(the test server runs PostgreSQL's defaults).")
        out += [f"- {text}", ""]

    # 4. GX
    gx = median(ms.get("gx"))
    if gx is not None and floor:
        steps = step_medians(ms["gx"])
        text = (f"**GX checks** ({gx / floor:.1f}× the floor): "
                + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()) + ".")
        gx_target = next((t for t in targets(results) if t["target"].startswith("GX")), None)
        if gx / floor <= 1.0 and gx_target and not gx_target["agree"]:
            text += (f" Met on the medians, but only because other work slowed the floor's median run "
                     f"more than the GX runs: on the fastest runs it is {gx_target['fastest']} and on CPU "
                     f"time {gx_target['cpu']} (the GX child's CPU includes some 3 s of importing Great "
                     "Expectations, the floor has no imports): read it as *at* the target, not safely "
                     "under it.")
        if gx / floor > 1.0 or (gx_target and not gx_target["agree"]):
            text += (" Every expectation is its own SQL query (or several: GX asks for unexpected counts, "
                     "then examples) over the 7M-row month, and uniqueness of `unique_row_id` is a "
                     "GROUP BY over 7M md5 strings. What would make it safe: one query per suite computing all "
                     "the counts at once (a custom batch-level expectation or a single SQL check), "
                     "leaving GX the reporting; or dropping the uniqueness expectation, which the silver "
                     "asset already checks (`unique_row_id_is_unique`) in the same run.")
        out += [f"- {text}", ""]

    # 5. memory
    measured = {mid: peak(m) for mid, m in ms.items() if m["runs"]}
    if measured:
        over = {mid: b for mid, b in measured.items() if b > PEAK_LIMIT}
        if over:
            text = ("**Peak memory**: over 1.5 GiB in " + ", ".join(
                f"{ms[mid]['title']} ({b / GiB:.2f} GiB)" for mid, b in over.items()) + ".")
            if any(mid.startswith("duckdb") for mid in over):
                text += (" The DuckDB loads reach DuckDB's default limit (`TAXI_DUCKDB_MEMORY_LIMIT`, 4GB): "
                         "build_silver's temp tables (`_typed` keeps the typed and the raw text columns of "
                         "every row, then `_keyed`) and the insert's window over 7M ids fill it before "
                         "DuckDB spills.")
            if "gx" in over:
                text += (" The GX validations query the same DuckDB file with the same 4GB limit "
                         "(`gx_context.warehouse_url` passes it), and the uniqueness expectation's "
                         "GROUP BY over 7M ids with the per-column aggregates goes just past 1.5 GiB.")
            low = ms.get("duckdb_dagster_lowmem")
            low_s, default_s = median(low), median(ms.get("duckdb_dagster"))
            if low and low_s is not None:
                limit = results["config"].get("low_memory_limit")
                text += (f" Tried: the same Dagster load with `TAXI_DUCKDB_MEMORY_LIMIT={limit}` peaks at "
                         f"{peak(low) / GiB:.2f} GiB "
                         + ("(under the target)" if peak(low) <= PEAK_LIMIT else "(still over the target)")
                         + f" and took {low_s:.0f} s"
                         + (f" against a median {default_s:.0f} s with 4GB (one run, on the busy machine: "
                            "DuckDB spills to disk, so expect it slower)" if default_s else "")
                         + ". Setting that limit for deployments (and for GX, which reads it from the "
                         "same setting) is a configuration change; the one-pass silver described above "
                         "would shrink what DuckDB has to hold in the first place.")
            small = [ms[mid]["title"] for mid in ms if mid not in over and ms[mid]["runs"]
                     and mid.startswith(("pg_", "kestra", "backfill"))]
            if small:
                text += " Under the target: " + ", ".join(small) + "."
        else:
            text = "**Peak memory**: every measurement stays under 1.5 GiB."
        out += [f"- {text}", ""]

    # 6. backfill
    single, by_month = median(ms.get("backfill_single_run")), median(ms.get("backfill_by_month"))
    if single is not None and by_month:
        steps = step_medians(ms["backfill_single_run"])
        bsteps = step_medians(ms["backfill_by_month"])
        dbt_single = sum(v for k, v in steps.items() if k.startswith("dbt_"))
        dbt_months = sum(v for k, v in bsteps.items() if k.startswith("dbt_"))
        text = (f"**Backfill** ({single / by_month:.2f}× the sum of single months): one run takes "
                f"{single:.1f} s against {by_month:.1f} s for the months one run each; dbt takes "
                f"{dbt_single:.1f} s of the single run and {dbt_months:.1f} s of the single months "
                "(three dbt invocations per run: reference models, fct_trips, the mart).")
        if single / by_month > 1.3:
            text += " Missed: the single run should not cost more than the months one by one."
        out += [f"- {text}", ""]
    return out
