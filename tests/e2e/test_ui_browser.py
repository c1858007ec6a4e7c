"""The Dagster UI as a person uses it, in headless Chromium against `dagster dev` (webserver and
daemon, the instance of `make dev`), sourcing from the local HTTP mirror: the asset graph shows
every layer; a month is materialized from the asset page; a two-month backfill is launched from
the same page and completes; the asset page shows the row count, the check results, the link to
the asset's source file and, per partition, each month's own row count; the GX check's Data Docs
link opens its validation page (served by `taxi-platform docs`, started beside `dagster dev`).

Screenshots of every step go to test-artifacts/ui/ (gitignored); the last one,
asset-graph.png, is the picture of the lineage used in docs/.
"""

from __future__ import annotations

import re

import duckdb
import pytest

from taxi_platform.sample_source import write_month
from taxi_platform.schemas import YELLOW
from tests.support.ui import (
    ARTIFACTS,
    Screenshots,
    dismiss_welcome,
    launch_chromium,
    require_chromium,
    start_dagster_dev,
    wait_for_backfill,
    wait_for_run,
)

LAYERS = ["raw", "lake", "bronze", "silver", "seeds", "staging", "gold", "marts"]
ASSETS = ["green_tripdata", "yellow_tripdata", "taxi_zone_lookup", "stg_green_tripdata", "dim_zones",
          "fct_trips"]
SILVER = "/assets/silver/yellow_tripdata"
UPSTREAM = f"{SILVER}?view=lineage&lineageScope=upstream"
CHECKS = ["gx_silver_suite", "no_rows_quarantined", "row_reconciliation", "unique_row_id_is_unique"]
GX_SUITE = "silver_yellow_tripdata"  # the suite gx_silver_suite runs
JANUARY_ROWS = 10_000  # the real January sample
SHOTS = ARTIFACTS / "ui"
VIEWPORT = {"width": 1600, "height": 1000}


@pytest.fixture
def dagster_ui(tmp_path, mirror):
    require_chromium()  # before starting anything: a missing browser fails at once
    # February beside the real January: generated in the published layout (1,500 trips).
    write_month(YELLOW, "2019-02", 1_500, mirror.root, seed=7)
    server = start_dagster_dev(tmp_path / "ui", mirror.url)
    dismiss_welcome(server.url)
    yield server
    server.stop()


@pytest.fixture
def page(dagster_ui):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport=VIEWPORT, base_url=dagster_ui.url)
        page = context.new_page()
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        yield page
        context.close()
        browser.close()


def _open_materialize_dialog(page, expect):
    """Asset page → Lineage → Upstream, graph depth All → Materialize all… (raw to silver)."""
    page.goto(UPSTREAM)
    page.get_by_role("button", name="All", exact=True).click()
    page.get_by_role("button", name="Materialize all…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Launch runs to materialize 4 assets")  # raw, lake, bronze, silver
    return dialog


def _pick_partitions(dialog, expect, text: str, count: str):
    box = dialog.get_by_placeholder(re.compile("ex: 2019-01"))
    box.fill(text)
    box.press("Enter")
    expect(dialog).to_contain_text(count)


def _toast(page, pattern: str) -> str:
    toast = page.get_by_text(re.compile(pattern))
    toast.wait_for()
    return re.search(pattern, toast.inner_text()).group(1)


def _check_results(page, expect, listed_as_succeeded: bool = True, gx_covers: str = "2019-01"):
    """The asset page's Checks tab: four checks; each one's latest execution Passed.

    After a single-run backfill the list shows the partitioned GX check as "Skipped" for the
    latest partition (its one evaluation covers the whole range and carries no partition key),
    though that evaluation passed on both months: so only the single-month run checks the list."""
    page.goto(f"{SILVER}?view=checks")
    expect(page.get_by_text(f"Checks ({len(CHECKS)})")).to_be_visible()
    for name in CHECKS:
        row = page.locator("span", has=page.locator(f'[title="{name}"]')).first
        if listed_as_succeeded:
            expect(row).to_contain_text(re.compile("succeeded", re.IGNORECASE))
        row.click()
        expect(page.locator('[aria-label="asset_check"] + span')).to_have_text(name)  # detail panel
        expect(page.locator('[data-tooltip="Passed"]').first).to_be_visible()
        if name == "gx_silver_suite":
            expect(page.get_by_text(re.compile(rf"expectations passed on .*yellow_tripdata_{gx_covers}"))
                   ).to_be_visible()


def _check_detail(page, expect, name: str):
    """The Checks tab with one check's detail panel open."""
    page.goto(f"{SILVER}?view=checks")
    page.locator("span", has=page.locator(f'[title="{name}"]')).first.click()
    expect(page.locator('[aria-label="asset_check"] + span')).to_have_text(name)


def _open_data_docs(page, expect, month: str):
    """gx_silver_suite's latest execution links its validation (the `data_docs` URL entry, shown
    for a one-month run); the UI opens it in a new tab, served over http by `taxi-platform docs`."""
    _check_detail(page, expect, "gx_silver_suite")
    link = page.locator("tr", has=page.get_by_text("data_docs", exact=True)).get_by_role("link").first
    served = rf"^http://127\.0\.0\.1:\d+/validations/{GX_SUITE}/.*{month}.*\.html$"  # not file://
    expect(link).to_have_attribute("href", re.compile(served))
    with page.context.expect_page() as opened:
        link.click()
    docs = opened.value
    docs.wait_for_load_state()
    expect(docs.get_by_text("Expectation Validation Result")).to_be_visible()
    expect(docs.get_by_text(f"Expectation Suite: {GX_SUITE}")).to_be_visible()
    expect(docs.get_by_text("Status: Succeeded")).to_be_visible()
    expect(docs.get_by_text(f"yellow_tripdata_{month}.csv.gz").first).to_be_visible()  # the month's batch
    return docs


def _partition_row_count(page, expect, month: str, rows: int):
    """The Partitions tab: pick the month in the list; its own materialization's row count."""
    page.get_by_placeholder("Filter by name…").fill(month)
    page.locator(f'[data-tooltip="{month}"]').click()  # the list item, not the months table's cell
    expect(page).to_have_url(re.compile(rf"[?&]partition={month}\b"))
    row_count = page.locator("tr", has=page.get_by_text("dagster/row_count", exact=True)).last
    expect(row_count.locator("td").nth(1)).to_have_text(str(rows))


def _expand_all_groups(page, expect):
    """The lineage shows groups collapsed at first; ⌥E is its "Expand all groups" (a toggle
    whose state the UI remembers, so press it only when the groups are collapsed)."""
    expect(page.get_by_role("button", name="Materialize all…")).to_be_visible()
    fct_trips = page.get_by_text("fct_trips", exact=True).first
    page.wait_for_timeout(1_000)  # the graph lays out after the button shows
    if not fct_trips.is_visible():
        page.keyboard.press("Alt+KeyE")
    expect(fct_trips).to_be_visible()


def _silver_rows(server) -> int:
    with duckdb.connect(str(server.data_dir / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM silver.yellow_tripdata").fetchone()[0]


@pytest.mark.slow
def test_the_ui_shows_every_layer_materializes_a_month_and_backfills_two(dagster_ui, page):
    from playwright.sync_api import expect

    shot = Screenshots(page, SHOTS)
    try:
        # The global asset lineage: one group per layer, every asset once the groups are expanded.
        page.goto("/asset-groups")
        expect(page.get_by_role("button", name="Materialize all…")).to_be_visible()
        for layer in LAYERS:
            expect(page.get_by_text(layer, exact=True).first).to_be_visible()
        _expand_all_groups(page, expect)
        for name in ASSETS:
            expect(page.get_by_text(name, exact=True).first).to_be_visible()
        shot("asset-graph")

        # One month from the asset page: silver and everything upstream of it, partition 2019-01.
        dialog = _open_materialize_dialog(page, expect)
        _pick_partitions(dialog, expect, "2019-01", "1 partition")
        shot("materialize-2019-01")
        dialog.get_by_role("button", name="Launch 1 run").click()
        run_id = _toast(page, r"Launched run (\w+)")
        run = wait_for_run(dagster_ui, run_id)
        page.goto(f"/runs/{run['runId']}")
        expect(page.get_by_text("Success", exact=True).first).to_be_visible()
        expect(page.get_by_text("Loading run logs…")).to_have_count(0)
        shot("run-2019-01")

        # The asset page: the month's row count, the link to the asset's own source file
        # (dagster/code_references, opened in the editor) and the four checks, all passed.
        page.goto(SILVER)
        expect(page.get_by_text("Row count")).to_be_visible()
        expect(page.get_by_text(f"{JANUARY_ROWS:,}", exact=True)).to_be_visible()
        expect(page.get_by_text("Source code", exact=True)).to_be_visible()
        source = page.locator("a", has=page.get_by_title("silver.py", exact=True))
        expect(source).to_contain_text(re.compile(r"Open\s*silver\.py.*in editor"))
        expect(source).to_have_attribute("href", re.compile(r"/taxi_platform/assets/silver\.py:\d+$"))
        shot("silver-overview-2019-01")
        _check_results(page, expect)
        shot("silver-checks-2019-01")

        # The GX check's Data Docs link: the month's validation page, served beside the UI.
        docs = _open_data_docs(page, expect, "2019-01")
        shot("gx-data-docs-2019-01", page=docs)
        docs.close()

        # A backfill of two months from the same page: one run (single-run backfill policy).
        dialog = _open_materialize_dialog(page, expect)
        _pick_partitions(dialog, expect, "[2019-01...2019-02]", "2 partitions")
        shot("backfill-dialog")
        dialog.get_by_role("button", name="Launch backfill").click()
        backfill_id = _toast(page, r"Created backfill (\w+)")
        state = wait_for_backfill(dagster_ui, backfill_id, runs_only=True)
        assert len(state["runs"]) == 1, state  # both months in one run

        rows = _silver_rows(dagster_ui)
        february = rows - JANUARY_ROWS
        assert february > 0
        page.goto(SILVER)
        # Each month's materialization carries its own figures: the overview shows the latest
        # partition's, February's alone.
        expect(page.get_by_text(f"{february:,}", exact=True)).to_be_visible()
        expect(page.get_by_text("2019-02", exact=True).first).to_be_visible()  # latest partition
        shot("silver-overview-backfill")
        page.goto(f"{SILVER}?view=partitions")
        _partition_row_count(page, expect, "2019-01", JANUARY_ROWS)
        shot("silver-partition-2019-01")
        _partition_row_count(page, expect, "2019-02", february)
        shot("silver-partition-2019-02")
        _check_results(page, expect, listed_as_succeeded=False, gx_covers="2019-02")
        shot("silver-checks-backfill")

        wait_for_backfill(dagster_ui, backfill_id)
        page.goto(f"/runs/b/{backfill_id}")
        expect(page.get_by_text("Succeeded", exact=True).first).to_be_visible()
        expect(page.get_by_text("100% completed").first).to_be_visible()
        shot("backfill-completed")

        # The lineage picture for docs/: navigation hidden, every group expanded, the graph alone.
        page.get_by_role("button", name="Hide navigation").click()
        page.goto("/asset-groups")  # laid out again for the wider canvas
        _expand_all_groups(page, expect)
        page.wait_for_timeout(1_000)
        sidebar = page.get_by_placeholder("Jump to…").locator("xpath=following::button[1]").bounding_box()
        toolbar = page.get_by_role("button", name="Materialize all…").bounding_box()
        x, y = sidebar["x"] + sidebar["width"] + 14, toolbar["y"] + toolbar["height"] + 14
        page.screenshot(path=str(SHOTS / "asset-graph.png"),
                        clip={"x": x, "y": y, "width": VIEWPORT["width"] - x, "height": VIEWPORT["height"] - y})
    except BaseException:
        shot("failure")
        (SHOTS / "failure.html").write_text(page.content())
        (SHOTS / "dagster-dev.log").write_text(dagster_ui.log_tail(200_000))
        raise
