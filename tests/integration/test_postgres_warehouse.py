"""The PostgreSQL warehouse on a real server: the same rows and the same unique_row_ids as
DuckDB (real and generated months, edge values, bad input), idempotent re-runs, a connection
dropped mid-COPY that rolls back, and concurrent writers of one month that take turns."""

from __future__ import annotations

import gzip
import math
import os
import shutil
import threading
import time

import psycopg2
import pytest

from taxi_platform.errors import BadInputError
from taxi_platform.files import CSV, FileContract
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import GREEN, YELLOW
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from taxi_platform.warehouse.postgres import PostgresWarehouseResource
from tests.support.backends import (
    REAL_YELLOW,
    bronze_rows,
    bronze_values,
    load_month,
    quarantine_rows,
    silver_ids,
    silver_rows,
    write_csv,
)
from tests.support.reference import expected_silver_ids, key_text, unique_row_id

JAN = YELLOW.filename("2019-01")


@pytest.fixture
def pg(postgres_server) -> PostgresWarehouseResource:
    return PostgresWarehouseResource(dsn=postgres_server.dsn(postgres_server.create_database()))


@pytest.fixture
def duck(tmp_path) -> DuckDBWarehouseResource:
    return DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"), memory_limit="512MB")


def _same_everywhere(pg, duck, schema):
    assert silver_rows(pg, schema) == silver_rows(duck, schema)
    assert quarantine_rows(pg, schema) == quarantine_rows(duck, schema)
    assert bronze_values(pg, schema) == bronze_values(duck, schema)


def _wait_for(predicate, what: str, seconds: float = 60.0):
    """Poll until ``predicate()`` is true (a deadline against hanging, not a timed assertion)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"never saw: {what}")
        time.sleep(0.05)


def test_the_real_yellow_month_gives_the_same_rows_and_ids_as_duckdb(pg, duck, tlc_dir):
    path = tlc_dir / REAL_YELLOW
    results = {w.name: load_month(w, YELLOW, "2019-01", path) for w in (pg, duck)}
    assert results["postgres"] == results["duckdb"]
    bronze, silver = results["postgres"]
    assert bronze.rows == silver.rows_out == 10_000 and silver.rows_quarantined == 0
    assert silver_ids(pg, YELLOW) == silver_ids(duck, YELLOW) == set(expected_silver_ids(path, YELLOW))
    _same_everywhere(pg, duck, YELLOW)


def test_a_re_run_of_a_month_leaves_exactly_what_one_run_leaves(pg, tlc_dir):
    path = tlc_dir / REAL_YELLOW
    load_month(pg, YELLOW, "2019-01", path)
    once = (bronze_rows(pg, YELLOW), silver_rows(pg, YELLOW))
    again = load_month(pg, YELLOW, "2019-01", path)
    assert again[0].rows == again[1].rows_out == 10_000
    assert (bronze_rows(pg, YELLOW), silver_rows(pg, YELLOW)) == once


def test_silvers_unique_index_proves_its_ids_unique_and_without_it_they_are_counted(pg, tlc_dir, monkeypatch):
    load_month(pg, YELLOW, "2019-01", tlc_dir / REAL_YELLOW)
    counted, count = [], PostgresWarehouseResource.duplicated_values
    monkeypatch.setattr(PostgresWarehouseResource, "duplicated_values",
                        lambda self, *args: counted.append(args) or count(self, *args))
    assert pg.duplicate_ids(YELLOW, [JAN]) == 0 and counted == []  # the catalog, not the table
    pg.query("DROP INDEX silver.yellow_tripdata_unique_row_id")
    pg.query("INSERT INTO silver.yellow_tripdata SELECT * FROM silver.yellow_tripdata LIMIT 1")
    assert pg.duplicate_ids(YELLOW, [JAN]) == 1 and counted == [("silver.yellow_tripdata", "unique_row_id")]


def test_generated_months_with_duplicates_strays_and_voided_trips_match_duckdb(pg, duck, tmp_path):
    # Loaded out of order: February first, so January must take its stray ids back.
    paths = {m: write_month(GREEN, m, 3000, tmp_path / "src", seed=i)
             for i, m in enumerate(["2019-01", "2019-02"])}
    for month in ("2019-02", "2019-01"):
        got = {w.name: load_month(w, GREEN, month, paths[month]) for w in (pg, duck)}
        assert got["postgres"] == got["duckdb"], month
    assert got["postgres"][1].duplicates_collapsed > 0
    _same_everywhere(pg, duck, GREEN)
    (distinct, total), = pg.query("SELECT count(DISTINCT unique_row_id), count(*) FROM silver.green_tripdata")
    assert distinct == total


EDGE_LINE = "2,2019-01-05 06:36:51,2019-01-05 06:50:42,1,3.72,1,N,68,236,1,14.0,0.0,0.5,1.0,0.0,0.3,15.8,"
TYPABLE_EDITS = [
    {}, {"tip_amount": "9.9"},  # the same trip twice: the first in file order stays
    {"vendorid": "1.0"}, {"vendorid": " 2 "}, {"vendorid": ""}, {"passenger_count": "+3"},
    {"fare_amount": "-0.004"}, {"fare_amount": "0.125"}, {"fare_amount": "-0.125"},
    {"fare_amount": "0.12499"}, {"fare_amount": "1e1"}, {"fare_amount": "5."},
    {"trip_distance": ".5"}, {"trip_distance": "-14.0"},
    # huge amounts: each its own id (beyond DECIMAL(38, 4) the double's shortest text)
    {"fare_amount": "1e34"}, {"fare_amount": "2e40"}, {"fare_amount": "-2e40"},
    {"trip_distance": "123456789012345678901234567890123456"},
    {"tpep_pickup_datetime": "2019-01-01 00:00:00.7"}, {"tpep_pickup_datetime": "2019-01-02"},
    {"tpep_pickup_datetime": " 2019-01-02 03:04:05 "}, {"tpep_pickup_datetime": "2019-01-03T01:02:03"},
    {"tpep_pickup_datetime": "2018-12-31 23:59:59"},
]
UNTYPABLE_EDITS = [  # quarantined with line and reason
    {"vendorid": "1.5"}, {"passenger_count": "abc"}, {"tpep_dropoff_datetime": "2019-13-01 00:00:00"},
    {"tpep_pickup_datetime": "now"}, {"fare_amount": "1,5"}, {"payment_type": "99999999999"},
    # not finite: a month's sums would become NaN
    {"trip_distance": "nan"}, {"fare_amount": "inf"}, {"tip_amount": "-Infinity"}, {"total_amount": "1e309"},
    {"tpep_pickup_datetime": "infinity"}, {"tpep_dropoff_datetime": "epoch"},
]


def _edge_rows(edits=TYPABLE_EDITS + UNTYPABLE_EDITS) -> list[dict[str, str]]:
    base = dict(zip(YELLOW.required, EDGE_LINE.split(","), strict=True))
    return [{**base, **edit} for edit in edits]


@pytest.mark.parametrize("cast_functions", [False, True], ids=["pg_input_is_valid", "plpgsql_casts"])
def test_edge_values_type_hash_and_quarantine_exactly_as_on_duckdb(pg, duck, tmp_path, cast_functions):
    pg = pg.model_copy(update={"force_cast_functions": cast_functions})
    path = write_csv(tmp_path / JAN, YELLOW, _edge_rows())
    got = {w.name: load_month(w, YELLOW, "2019-01", path, max_fraction=1.0) for w in (pg, duck)}
    p, d = got["postgres"][1], got["duckdb"][1]
    assert (p.rows_in, p.rows_out, p.rows_quarantined, p.duplicates_collapsed, p.pickups_outside_month) == (
        d.rows_in, d.rows_out, d.rows_quarantined, d.duplicates_collapsed, d.pickups_outside_month)
    assert [(c, n) for c, n, _ in p.quarantine_reasons] == [(c, n) for c, n, _ in d.quarantine_reasons]
    # Collapsed: the tip twin, vendor ' 2 ', passenger '+3', and fare 0.12499 (DuckDB's key reads
    # amounts as DECIMAL(38, 4) first: 0.1250, then 0.13, the same as 0.125; PostgreSQL agrees).
    assert p.rows_quarantined == len(UNTYPABLE_EDITS) and p.duplicates_collapsed == 4
    _same_everywhere(pg, duck, YELLOW)


def test_non_finite_values_are_quarantined_and_huge_amounts_keep_distinct_ids(pg, duck, tmp_path):
    rows = _edge_rows([{}, {"fare_amount": "1e34"}, {"fare_amount": "2e40"}, {"fare_amount": "-2e40"},
                       {"fare_amount": "3e40"}, {"fare_amount": "nan"}, {"trip_distance": "inf"},
                       {"extra": "1e309"}])
    path = write_csv(tmp_path / JAN, YELLOW, rows)
    for warehouse in (pg, duck):
        _, silver = load_month(warehouse, YELLOW, "2019-01", path, max_fraction=1.0)
        assert (silver.rows_out, silver.rows_quarantined, silver.duplicates_collapsed) == (5, 3, 0)
        # every typable row has its own id, the reference implementation's
        assert silver_ids(warehouse, YELLOW) == {unique_row_id(r, YELLOW) for r in rows[:5]}
        reasons = [r[2] for r in quarantine_rows(warehouse, YELLOW)]
        assert reasons == ["fare_amount: cannot read 'nan' as DOUBLE",
                           "trip_distance: cannot read 'inf' as DOUBLE", "extra: cannot read '1e309' as DOUBLE"]
        (fares,), = warehouse.query("SELECT sum(fare_amount) FROM silver.yellow_tripdata")
        assert not math.isnan(fares)
    assert key_text(rows[2], YELLOW).split("|")[5] == "2e+40"


def test_odd_but_typable_values_take_the_quick_path_and_match_duckdb(pg, duck, tmp_path, monkeypatch):
    # The typable edge rows minus the timestamps not already in the form they print back as,
    # and a whole number written with a decimal point ('1.0': PostgreSQL's integer input
    # refuses it): every value left is typed by the one-pass (quick) typing.
    rows = [r for r in _edge_rows(TYPABLE_EDITS) if len(r["tpep_pickup_datetime"]) == 19
            and r["tpep_pickup_datetime"][10] == " " and r["vendorid"] != "1.0"]
    assert len(rows) >= 15
    def careful_path_not_expected(*args, **kwargs):
        raise AssertionError("the careful typing ran: the quick pass gave up on a typable value")
    monkeypatch.setattr(PostgresWarehouseResource, "_careful_silver", careful_path_not_expected)
    path = write_csv(tmp_path / JAN, YELLOW, rows)
    got = {w.name: load_month(w, YELLOW, "2019-01", path) for w in (pg, duck)}
    assert got["postgres"] == got["duckdb"]
    assert got["postgres"][1].rows_quarantined == 0 and got["postgres"][1].duplicates_collapsed > 0
    _same_everywhere(pg, duck, YELLOW)


def test_garbage_values_are_quarantined_like_on_duckdb_and_too_many_fail_the_month(pg, duck, tlc_dir, tmp_path):
    with gzip.open(tlc_dir / REAL_YELLOW, "rt", newline="") as handle:
        lines = handle.read().split("\r\n")
    for i in (5, 500, 5000):  # passenger_count on three lines becomes garbage
        fields = lines[i].split(",")
        fields[3] = "garbage"
        lines[i] = ",".join(fields)
    path = tmp_path / "bad" / JAN
    path.parent.mkdir()
    with gzip.open(path, "wt", newline="") as out:
        out.write("\r\n".join(lines))
    got = {w.name: load_month(w, YELLOW, "2019-01", path) for w in (pg, duck)}
    assert got["postgres"] == got["duckdb"]
    assert got["postgres"][1].rows_quarantined == 3 and got["postgres"][1].rows_out == 9_997
    assert [r[1] for r in quarantine_rows(pg, YELLOW)] == [6, 501, 5001]  # file line numbers
    assert quarantine_rows(pg, YELLOW)[0][2] == "passenger_count: cannot read 'garbage' as INTEGER"
    _same_everywhere(pg, duck, YELLOW)

    # Above the allowed share the month fails in bronze and the good load stays.
    for i in range(1, 200):
        fields = lines[i].split(",")
        fields[3] = "garbage"
        lines[i] = ",".join(fields)
    worse = tmp_path / "worse" / JAN
    worse.parent.mkdir()
    with gzip.open(worse, "wt", newline="") as out:
        out.write("\r\n".join(lines))
    before = bronze_rows(pg, YELLOW)
    with pytest.raises(BadInputError, match="cannot be typed.*passenger_count"):
        pg.load_bronze(YELLOW, "2019-01", JAN, str(worse))
    assert bronze_rows(pg, YELLOW) == before


def test_a_malformed_or_truncated_file_fails_clearly_and_keeps_the_loaded_month(pg, tlc_dir, tmp_path):
    load_month(pg, YELLOW, "2019-01", tlc_dir / REAL_YELLOW)
    before = bronze_rows(pg, YELLOW)
    extra_field = tmp_path / "a" / JAN
    write_csv(extra_field, YELLOW, [])
    with gzip.open(extra_field, "at", newline="") as out:
        out.write(",".join(["1"] * 19) + "\r\n")
    truncated = tmp_path / "b" / JAN
    truncated.parent.mkdir()
    truncated.write_bytes((tlc_dir / REAL_YELLOW).read_bytes()[:100_000])
    header_only = write_csv(tmp_path / "c" / JAN, YELLOW, [])
    for path, message in [(extra_field, "extra data after last expected column"),
                          (truncated, "could not be loaded"), (header_only, "no trip rows")]:
        with pytest.raises(BadInputError, match=message):
            pg.load_bronze(YELLOW, "2019-01", JAN, str(path))
        assert bronze_rows(pg, YELLOW) == before


def _copy_backend(admin) -> int | None:
    with admin.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'taxi_platform' "
                    "AND state = 'active' AND query LIKE 'COPY %'")
        row = cur.fetchone()
    return row[0] if row else None


def test_a_connection_dropped_mid_copy_rolls_back_and_a_re_run_is_clean(pg, tlc_dir, tmp_path, monkeypatch):
    path = tlc_dir / REAL_YELLOW
    load_month(pg, YELLOW, "2019-01", path)
    clean = (bronze_rows(pg, YELLOW), silver_rows(pg, YELLOW))
    # A pipe can be read once: the COPY reads it, so the contract (checked on a real file before
    # it is landed) is given here.
    contract = FileContract(CSV, tuple(zip(YELLOW.header, YELLOW.required, strict=True)), [])
    monkeypatch.setattr(FileContract, "of", classmethod(lambda cls, *args, **kwargs: contract))

    # The file arrives through a pipe we control: half of it, then the server connection of
    # the COPY is terminated from another connection while the COPY waits for the rest.
    fifo = tmp_path / "slow.csv"
    os.mkfifo(fifo)
    with gzip.open(path, "rb") as handle:
        lines = handle.read().split(b"\r\n")
    outcome: dict = {}

    def load():
        try:
            pg.load_bronze(YELLOW, "2019-01", JAN, str(fifo))
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome["error"] = exc

    loader = threading.Thread(target=load)
    loader.start()
    admin = psycopg2.connect(pg.dsn)
    admin.autocommit = True
    try:
        with open(fifo, "wb") as writer:
            writer.write(b"\r\n".join(lines[:5000]) + b"\r\n")
            writer.flush()
            _wait_for(lambda: _copy_backend(admin), "the COPY running on the server")
            with admin.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", [_copy_backend(admin)])
            try:
                writer.write(b"\r\n".join(lines[5000:]))
            except BrokenPipeError:
                pass
    except BrokenPipeError:
        pass
    finally:
        loader.join(60)
        admin.close()
    assert isinstance(outcome.get("error"), (psycopg2.OperationalError, psycopg2.InterfaceError))
    assert (bronze_rows(pg, YELLOW), silver_rows(pg, YELLOW)) == clean  # rolled back

    load_month(pg, YELLOW, "2019-01", path)
    assert (bronze_rows(pg, YELLOW), silver_rows(pg, YELLOW)) == clean


def test_two_writers_of_the_same_month_take_turns_instead_of_corrupting_it(pg, tlc_dir, tmp_path):
    path = tlc_dir / REAL_YELLOW
    load_month(pg, YELLOW, "2019-01", path)
    clean = (bronze_rows(pg, YELLOW), silver_rows(pg, YELLOW))
    copies = []
    for i in range(2):
        copies.append(tmp_path / str(i) / JAN)
        copies[-1].parent.mkdir()
        shutil.copyfile(path, copies[-1])

    # Hold the month's bronze lock, start two writers, see both wait for it, then let go.
    holder = psycopg2.connect(pg.dsn)
    errors: list[BaseException] = []

    def write(copy):
        try:
            load_month(pg, YELLOW, "2019-01", copy)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def waiting() -> int:
        with holder.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            return cur.fetchone()[0]

    try:
        with holder.cursor() as cur:
            # the lock a bronze writer holds for the whole load of a month (land, gate, publish)
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('bronze.yellow_tripdata load'), hashtext(%s))",
                        ["2019-01"])
        writers = [threading.Thread(target=write, args=(c,)) for c in copies]
        for w in writers:
            w.start()
        _wait_for(lambda: waiting() == 2, "both writers waiting for the month")
        holder.commit()  # releases the lock: the writers go one after the other
        for w in writers:
            w.join(120)
    finally:
        holder.close()
    assert not errors
    assert (bronze_rows(pg, YELLOW), silver_rows(pg, YELLOW)) == clean


def test_a_file_with_crlf_and_lf_line_endings_mixed_loads_as_on_duckdb(pg, duck, tlc_dir, tmp_path):
    lines = gzip.decompress((tlc_dir / REAL_YELLOW).read_bytes()).decode().split("\r\n")
    path = tmp_path / JAN
    with gzip.open(path, "wt", newline="") as out:
        out.write("".join(line + ("\n" if i % 2 else "\r\n") for i, line in enumerate(lines) if line))
    for warehouse in (pg, duck):
        bronze, silver = load_month(warehouse, YELLOW, "2019-01", path)
        assert bronze.rows == silver.rows_out == 10_000
    assert silver_ids(pg, YELLOW) == set(expected_silver_ids(tlc_dir / REAL_YELLOW, YELLOW))
    _same_everywhere(pg, duck, YELLOW)
