"""``taxi-platform``: a small helper CLI (offline sample source, the demo, the instance).

    taxi-platform sample-source --months 2019-01..2019-03 --rows 50000 --out data/sample_source
    taxi-platform demo
    taxi-platform instance     # $DAGSTER_HOME/dagster.yaml and its storage, before any run
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from taxi_platform.partitions import parse_month_range
from taxi_platform.schemas import COLOURS


def _sample_source(args: argparse.Namespace) -> int:
    from taxi_platform.sample_source import write_sample_source
    from taxi_platform.schemas import CSV_GZ, PARQUET

    months = parse_month_range(args.months)
    colours = [c.strip() for c in args.colours.split(",")]
    unknown = set(colours) - set(COLOURS)
    if unknown:
        sys.exit(f"unknown colour(s) {sorted(unknown)}; use {','.join(COLOURS)}")
    if args.green_share < 0:
        sys.exit(f"--green-share {args.green_share} must not be negative")
    fmt = PARQUET if args.format == "parquet" else CSV_GZ
    out = Path(args.out)
    started = time.monotonic()
    for path in write_sample_source(out, months, args.rows, colours, seed=args.seed,
                                    green_share=args.green_share, fmt=fmt):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    rows = {c: max(1, round(args.rows * args.green_share)) if c == "green" else args.rows for c in colours}
    per_colour = ", ".join(f"{c} {n:,}" for c, n in rows.items())
    use = (f"TAXI_SOURCE=tlc TAXI_TLC_URL={out.absolute()}" if fmt == PARQUET
           else f"TAXI_SOURCE_URL={out.absolute()}")
    print(f"{len(months) * len(colours)} {args.format} files (rows a month: {per_colour}) in "
          f"{time.monotonic() - started:.1f}s; use it with {use}")
    return 0


@contextlib.contextmanager
def _stdout_to(path: Path):
    """Send the process's stdout (file descriptor 1: dbt's output, echoed by dagster-dbt) to
    ``path`` while the block runs; yields ``say``, which prints to the real stdout."""
    sys.stdout.flush()
    real = os.dup(1)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        try:
            yield lambda line: os.write(real, (line + "\n").encode())
        finally:
            sys.stdout.flush()
            os.dup2(real, 1)
            os.close(real)


def _demo(args: argparse.Namespace) -> int:
    """Materialize every asset (raw to the dbt marts) for a few months on the embedded default,
    from a sample source; print the row counts, the mart's included."""
    months = parse_month_range(args.months)
    data_dir = Path(os.environ.setdefault("TAXI_DATA_DIR", "data")).absolute()
    if not os.environ.get("TAXI_SOURCE_URL"):
        from taxi_platform.sample_source import write_sample_source

        source = data_dir / "sample_source"
        print(f"writing an offline sample source ({args.rows:,} yellow and "
              f"{max(1, round(args.rows * args.green_share)):,} green rows a month) to {source} ...")
        write_sample_source(source, months, args.rows, green_share=args.green_share)
        os.environ["TAXI_SOURCE_URL"] = str(source)
    print(f"source: {os.environ['TAXI_SOURCE_URL']}")

    from dagster import DagsterInstance

    from taxi_platform.definitions import defs
    from taxi_platform.instance import prepare_instance

    print(prepare_instance())
    from taxi_platform.resources import build_warehouse
    from taxi_platform.settings import Settings

    instance = DagsterInstance.get()  # DAGSTER_HOME (make sets .dagster_home/): runs show in the UI
    job = defs.resolve_implicit_global_asset_job_def()
    dbt_log = data_dir / "demo-dbt-output.log"
    print(f"runs log what each step did below; dbt's own output goes to {dbt_log}", flush=True)
    with _stdout_to(dbt_log) as say:
        for month in months:
            started = time.monotonic()
            result = job.execute_in_process(partition_key=month, instance=instance, raise_on_error=False,
                                            tags={"taxi/demo": "true"})
            status = "ok" if result.success else "FAILED"
            say(f"  {month}: run {result.run_id[:8]} {status} in {time.monotonic() - started:.1f}s")
            if not result.success:
                for event in result.all_events:
                    if event.is_failure:
                        say(f"    {event.message}")
                return 1

    warehouse = build_warehouse(Settings.from_env())
    print("\nloaded (rows per file):")
    print(f"  {'table':<32}{'file':<36}{'rows':>10}")
    for layer in ("bronze", "silver"):
        for colour in COLOURS:
            table = f"{layer}.{colour}_tripdata"
            for filename, rows in warehouse.query(
                    f"SELECT filename, count(*) FROM {table} GROUP BY 1 ORDER BY 1"):
                print(f"  {table:<32}{filename:<36}{rows:>10,}")
    mart = "marts.dm_monthly_zone_revenue"
    (mart_rows, months, trips), = warehouse.query(
        f"SELECT count(*), count(DISTINCT revenue_month), coalesce(sum(total_monthly_trips), 0) FROM {mart}")
    (fct_rows,), = warehouse.query("SELECT count(*) FROM gold.fct_trips")
    print(f"\n  {'gold.fct_trips':<32}{'(all files)':<36}{fct_rows:>10,}")
    print(f"  {mart:<32}{f'{months} pickup months, {trips:,} trips':<36}{mart_rows:>10,}")
    print("\nOpen the UI with `make dev`, then http://127.0.0.1:3000 (runs are in .dagster_home/).")
    return 0


def _docs(args: argparse.Namespace) -> int:
    """Serve the Great Expectations Data Docs (``<TAXI_DATA_DIR>/gx_data_docs``) on 127.0.0.1, where
    the checks' ``data_docs`` links (TAXI_DATA_DOCS_URL) point."""
    import functools
    import http.server
    from urllib.parse import urlsplit

    from taxi_platform.checks.gx_context import data_docs_dir
    from taxi_platform.settings import Settings

    settings = Settings.from_env()
    folder = data_docs_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    port = args.port or urlsplit(settings.data_docs_url).port or 3001
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    print(f"Data Docs of {folder} on http://127.0.0.1:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _instance(args: argparse.Namespace) -> int:
    from taxi_platform.instance import prepare_instance

    print(prepare_instance())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taxi-platform", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    sample = sub.add_parser("sample-source", help="write deterministic synthetic months, laid out like the CSV "
                                                  "mirror (--format csv) or the TLC (--format parquet)")
    sample.add_argument("--months", required=True, help="YYYY-MM or YYYY-MM..YYYY-MM")
    sample.add_argument("--rows", type=int, default=50_000, help="rows per file (default 50000)")
    sample.add_argument("--out", required=True,
                        help="folder to write into: <colour>/<file>.csv.gz (csv) or <file>.parquet (parquet, flat)")
    sample.add_argument("--colours", default=",".join(COLOURS), help="default: yellow,green")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--format", choices=("csv", "parquet"), default="csv",
                        help="csv: the mirror's layout (TAXI_SOURCE_URL); parquet: the TLC's (TAXI_SOURCE=tlc "
                             "TAXI_TLC_URL). Default csv")
    sample.add_argument("--green-share", type=float, default=1.0,
                        help="green rows per file as a share of --rows (default 1.0)")
    sample.set_defaults(func=_sample_source)

    demo = sub.add_parser("demo", help="materialize every asset for a few months, offline")
    demo.add_argument("--months", default="2019-01..2019-03")
    demo.add_argument("--rows", type=int, default=20_000, help="yellow rows a month (default 20,000)")
    # The city's balance: green files hold ~9% of yellow's rows in 2019 (published-metadata:
    # 2019-01 green 672,105 trips, yellow 7,696,617).
    demo.add_argument("--green-share", type=float, default=0.09,
                      help="green rows a month as a share of --rows (default 0.09, as published in 2019)")
    demo.set_defaults(func=_demo)

    docs = sub.add_parser("docs", help="serve the Great Expectations Data Docs on 127.0.0.1")
    docs.add_argument("--port", type=int, default=None, help="default: TAXI_DATA_DOCS_URL's port (3001)")
    docs.set_defaults(func=_docs)

    instance = sub.add_parser("instance", help="write $DAGSTER_HOME/dagster.yaml and create its storage")
    instance.set_defaults(func=_instance)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
