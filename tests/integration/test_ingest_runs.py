"""Real Dagster runs of raw -> lake -> bronze -> silver on a real DuckDB file: metadata,
idempotency, and bad input that fails clearly while every good month stays good."""

from __future__ import annotations

import gzip
import hashlib

import pytest
from dagster import AssetKey, DagsterInstance

from taxi_platform.schemas import YELLOW
from tests.support.runs import failure_messages, rewrite_csv, run_months, table_digest

REAL = "yellow_tripdata_2019-01.csv.gz"
FEB = "yellow_tripdata_2019-02.csv.gz"


@pytest.fixture
def instance(platform_env):
    with DagsterInstance.get() as instance:  # the fixture's DAGSTER_HOME
        yield instance


def _yellow(instance, month):
    from taxi_platform.assets import ingest_assets

    return run_months(instance, month, [a for a in ingest_assets if "yellow" in a.key.to_user_string()])


def _metadata(instance, key: str):
    event = instance.get_latest_materialization_event(AssetKey.from_user_string(key))
    return event.asset_materialization.metadata


def test_a_month_lands_in_silver_with_row_counts_checksums_and_schema_in_metadata(instance, mirror):
    result = _yellow(instance, "2019-01")
    assert result.success, failure_messages(result)
    raw = _metadata(instance, "raw/yellow_tripdata")
    original = (mirror.root / "yellow" / REAL).read_bytes()
    assert raw["bytes"].value == len(original) and raw["sha256"].value == hashlib.sha256(original).hexdigest()
    bronze, silver = _metadata(instance, "bronze/yellow_tripdata"), _metadata(instance, "silver/yellow_tripdata")
    assert bronze["dagster/row_count"].value == 10_000
    assert silver["dagster/row_count"].value == 10_000
    assert silver["rows_in"].value == 10_000 and silver["rows_quarantined"].value == 0
    assert silver["duplicates_collapsed"].value == 0
    assert "unique_row_id" in [c.name for c in silver["dagster/column_schema"].schema.columns]
    lineage = silver["dagster/column_lineage"].value.deps_by_column  # silver's columns from bronze's
    assert {d.column_name for d in lineage["unique_row_id"]} == {
        "vendorid", "tpep_pickup_datetime", "tpep_dropoff_datetime", "pulocationid", "dolocationid",
        "fare_amount", "trip_distance"}
    assert {d.asset_key.to_user_string() for deps in lineage.values() for d in deps} == {"bronze/yellow_tripdata"}
    preview = silver["preview"].value  # a typed table the UI can sort
    assert "unique_row_id" in [c.name for c in preview.schema.columns] and len(preview.records) > 0
    run = instance.get_run_by_id(result.run_id)
    assert run.tags["taxi/yellow"] == REAL
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()
              if e.asset_key == AssetKey.from_user_string("silver/yellow_tripdata")}
    assert checks["unique_row_id_is_unique"] is True and checks["no_rows_quarantined"] is True


def test_a_month_materialized_three_times_leaves_identical_silver(instance, mirror, tmp_path):
    from taxi_platform.sample_source import write_month

    mirror.add(write_month(YELLOW, "2019-02", 3_000, tmp_path / "gen"), "yellow")
    digests = []
    for _ in range(3):
        for month in ("2019-01", "2019-02"):
            assert _yellow(instance, month).success
        digests.append((table_digest("silver.yellow_tripdata"), table_digest("bronze.yellow_tripdata")))
    assert digests[0] == digests[1] == digests[2]
    assert digests[0][0][0] == 10_000 + 3_000 - _metadata(instance, "silver/yellow_tripdata")["duplicates_collapsed"].value
    lake = _metadata(instance, "lake/yellow_tripdata")
    assert lake["unchanged"].value is True, "the unchanged object is not rewritten"


def _broken(lines, kind):
    header, rows = lines[0], lines[1:]
    cols = header.split(",")
    if kind == "renamed column":
        return [header.replace("fare_amount", "fare_amt"), *rows]
    if kind == "missing column":
        i = cols.index("tip_amount")
        return [",".join(c for j, c in enumerate(r.split(",")) if j != i) for r in lines]
    if kind == "extra column":
        return [header + ",airport_fee", *[r + ",0" for r in rows]]
    if kind == "non-numeric value":
        i = cols.index("fare_amount")
        out = [header]
        for n, r in enumerate(rows):
            f = r.split(",")
            if n % 10 == 0 and r:
                f[i] = "twelve"
            out.append(",".join(f))
        return out
    if kind == "header only":
        return [header, ""]
    raise AssertionError(kind)


BAD_INPUT = {
    # kind: (what the message must say, the column it must name or None)
    "renamed column": ("does not match the yellow column contract", "fare_amount"),
    "missing column": ("missing column tip_amount", "tip_amount"),
    "extra column": ("unexpected column airport_fee", "airport_fee"),
    "non-numeric value": ("cannot be typed", "fare_amount"),
    "header only": ("has a header but no trip rows", None),
    "truncated gzip": ("Unexpected end of GZIP stream", None),
    "empty file": ("is empty", None),
    "not published (404)": ("is not published at", None),
}


@pytest.mark.parametrize("kind", list(BAD_INPUT))
def test_bad_input_fails_naming_file_partition_and_column_and_loses_nothing(instance, mirror, tmp_path, kind):
    from taxi_platform.sample_source import write_month

    # Good months first: January (real) and a good February that the bad file will try to replace.
    good_feb = write_month(YELLOW, "2019-02", 2_000, tmp_path / "good")
    mirror.add(good_feb, "yellow")
    for month in ("2019-01", "2019-02"):
        assert _yellow(instance, month).success
    before = {t: table_digest(t) for t in ("bronze.yellow_tripdata", "silver.yellow_tripdata")}

    target = mirror.root / "yellow" / FEB
    if kind == "truncated gzip":
        data = good_feb.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif kind == "empty file":
        target.write_bytes(b"")
    elif kind == "not published (404)":
        target.unlink()
    else:
        rewrite_csv(good_feb, target, lambda lines: _broken(lines, kind))

    result = _yellow(instance, "2019-02")
    assert not result.success
    message = " ".join(failure_messages(result))
    expected, column = BAD_INPUT[kind]
    assert FEB in message and expected in message, message
    if kind != "not published (404)":
        assert "partition 2019-02" in message, message
    if column:
        assert column in message, message
    assert "Traceback" not in message.split("\n")[0]
    # every month that was good before is still good, byte for byte
    assert {t: table_digest(t) for t in before} == before


def _one_bad_row(lines):
    """The file's line 6 with passenger_count 'two'."""
    f = lines[5].split(",")
    f[YELLOW.header.index("passenger_count")] = "two"
    return [*lines[:5], ",".join(f), *lines[6:]]


def test_a_few_untypable_rows_are_quarantined_with_line_and_reason(instance, mirror, tmp_path):
    from taxi_platform.resources import build_warehouse
    from taxi_platform.settings import Settings

    original = mirror.root / "yellow" / REAL
    rewrite_csv(original, original, _one_bad_row)
    result = _yellow(instance, "2019-01")
    assert result.success, failure_messages(result)
    silver = _metadata(instance, "silver/yellow_tripdata")
    assert silver["rows_quarantined"].value == 1 and silver["dagster/row_count"].value == 9_999
    rows = build_warehouse(Settings.from_env()).query(
        "SELECT filename, line_number, reason, passenger_count FROM silver.yellow_tripdata_quarantine")
    assert rows == [(REAL, 6, "passenger_count: cannot read 'two' as INTEGER", "two")]
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "no_rows_quarantined")
    assert check.passed is False


def test_silver_trusts_the_gates_count_of_untypable_values_only_where_it_found_none(instance, mirror, tmp_path):
    """DuckDB's silver skips its own untypable-value test over a load the gate found clean, and
    builds the same rows either way; a load with such values, or one published before the count
    was kept, is tested."""
    from taxi_platform.resources import build_warehouse
    from taxi_platform.sample_source import write_month
    from taxi_platform.settings import Settings

    original = mirror.root / "yellow" / REAL
    rewrite_csv(original, original, _one_bad_row)
    mirror.add(write_month(YELLOW, "2019-02", 2_000, tmp_path / "gen"), "yellow")
    for month in ("2019-01", "2019-02"):
        assert _yellow(instance, month).success
    warehouse = build_warehouse(Settings.from_env())
    assert dict(warehouse.query("SELECT month, untypable_rows FROM bronze.yellow_tripdata_loads")) == {
        "2019-01": 1, "2019-02": 0}
    tables = ("silver.yellow_tripdata", "silver.yellow_tripdata_quarantine")
    built = {t: table_digest(t) for t in tables}
    warehouse.query("UPDATE bronze.yellow_tripdata_loads SET untypable_rows = NULL")  # as loaded before
    for month in ("2019-02", "2019-01"):
        warehouse.build_silver(YELLOW, month)
    assert {t: table_digest(t) for t in tables} == built
    assert warehouse.query("SELECT count(*) FROM silver.yellow_tripdata_quarantine") == [(1,)]


def _mixed_line_endings(path, target):
    lines = gzip.decompress(path.read_bytes()).decode().split("\r\n")
    text = "".join(line + ("\r\n" if i % 3 else "\n") for i, line in enumerate(lines) if line)
    with gzip.open(target, "wt", newline="") as out:
        out.write(text)


ODD_BUT_GOOD = {
    "lines ending in CRLF and LF mixed": _mixed_line_endings,
    "an uncompressed CSV under the .csv.gz name": lambda path, target: target.write_bytes(
        gzip.decompress(path.read_bytes())),
}


@pytest.mark.parametrize("kind", list(ODD_BUT_GOOD))
def test_odd_but_good_files_load_exactly_like_their_clean_twin(instance, mirror, tmp_path, kind):
    from taxi_platform.sample_source import write_month

    clean = write_month(YELLOW, "2019-02", 2_000, tmp_path / "good")
    mirror.add(clean, "yellow")
    assert _yellow(instance, "2019-02").success
    twin = {t: table_digest(t) for t in ("bronze.yellow_tripdata", "silver.yellow_tripdata")}
    ODD_BUT_GOOD[kind](clean, mirror.root / "yellow" / FEB)
    result = _yellow(instance, "2019-02")
    assert result.success, failure_messages(result)
    assert _metadata(instance, "bronze/yellow_tripdata")["unchanged"].value is False  # really loaded again
    assert {t: table_digest(t) for t in twin} == twin


IMPLAUSIBLE = {
    # kind: (how the good February becomes the suspicious file, what the message must say)
    "half the month's rows": (lambda lines: lines[: len(lines) // 2], "far fewer than the"),
    "every trip of another month": (lambda lines: [lines[0], *[l.replace("2019-02-", "2018-11-") for l in lines[1:]]],
                                    "fall in 2019-02"),
}


@pytest.mark.parametrize("kind", list(IMPLAUSIBLE))
def test_a_clean_but_implausible_file_is_refused_and_the_reload_tag_accepts_it_deliberately(
        instance, mirror, tmp_path, kind):
    from taxi_platform.sample_source import write_month

    good_feb = write_month(YELLOW, "2019-02", 3_000, tmp_path / "good")
    mirror.add(good_feb, "yellow")
    assert _yellow(instance, "2019-02").success
    before = {t: table_digest(t) for t in ("bronze.yellow_tripdata", "silver.yellow_tripdata")}
    edit, expected = IMPLAUSIBLE[kind]
    rewrite_csv(good_feb, mirror.root / "yellow" / FEB, edit)

    refused = _yellow(instance, "2019-02")
    assert not refused.success
    message = " ".join(failure_messages(refused))
    assert expected in message and "taxi/reload=true" in message and "partition 2019-02" in message, message
    assert {t: table_digest(t) for t in before} == before  # the good month stays

    from dagster import materialize

    from taxi_platform.assets import ingest_assets
    from taxi_platform.resources import resources_from_env

    accepted = materialize([a for a in ingest_assets if "yellow" in a.key.to_user_string()], partition_key="2019-02",
                           instance=instance, resources=resources_from_env(), tags={"taxi/reload": "true"},
                           raise_on_error=False)
    assert accepted.success, failure_messages(accepted)
    assert {t: table_digest(t) for t in before} != before
