"""DuckDB silver on a month large enough for DuckDB to read and write it in parallel (several
row groups, several threads): it holds exactly the reference's ids, and of a repeated id the
first line in the file, wherever the repeat is; the whole-table duplicate count is exact."""

from __future__ import annotations

import csv
import gzip

from taxi_platform.files import check_header, read_header
from taxi_platform.sample_source import write_month
from taxi_platform.schemas import SCHEMAS
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource
from tests.support.reference import expected_silver_ids
from tests.support.runs import rewrite_csv

ROWS = 400_000  # over three of DuckDB's 122,880-row groups


def _with_late_repeats(path, every: int = 997):
    """Rewrite ``path``: after all its lines, a copy of every ``every``-th line with another
    tolls_amount (a non-key column: same id, different row). The generator's own duplicates
    (a line repeating the one before it) stay; their repeat gets the other tolls too."""
    with gzip.open(path, "rt", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    tolls = header.index("tolls_amount")
    for i in range(1, len(rows)):
        if rows[i] == rows[i - 1]:
            rows[i] = rows[i][:tolls] + ["7.77"] + rows[i][tolls + 1:]
    rows += [row[:tolls] + ["9.99"] + row[tolls + 1:] for row in rows[::every]]
    with gzip.open(path, "wt", newline="", compresslevel=1) as handle:
        csv.writer(handle, lineterminator="\r\n").writerows([header, *rows])
    return len(rows)


def test_a_400k_row_month_keeps_exactly_the_first_line_of_each_id(tmp_path):
    schema, month = SCHEMAS["yellow"], "2019-03"
    path = write_month(schema, month, ROWS, tmp_path / "source", seed=7)
    lines = _with_late_repeats(path)
    name = schema.filename(month)
    check_header(read_header(path, file=name, partition=month), schema, file=name, partition=month)
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    warehouse.load_bronze(schema, month, name, str(path))
    silver = warehouse.build_silver(schema, month, name)

    expected = expected_silver_ids(path, schema)
    ids = [r[0] for r in warehouse.query(f"SELECT unique_row_id FROM silver.{schema.table}")]
    assert silver.duplicates_collapsed == lines - len(expected) > ROWS // 997
    assert (silver.rows_in, silver.rows_out) == (lines, len(expected))
    assert sorted(ids) == sorted(expected)
    # every repeat carried other tolls: silver holds the first line of each id, never a repeat
    tolls = warehouse.query(f"SELECT tolls_amount, count(*) FROM silver.{schema.table} GROUP BY 1")
    assert dict(tolls) == {0.0: len(expected)}


def test_the_duplicate_count_of_a_whole_table_is_exact(tmp_path):
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    warehouse.query("CREATE TABLE t AS SELECT md5((i % 1000)::VARCHAR) AS id FROM range(5000) r(i) "
                    "UNION ALL SELECT md5('x' || i) FROM range(10000) r(i)")
    assert warehouse.duplicated_values("t", "id") == 1000
    warehouse.query("CREATE TABLE u AS SELECT md5(i::VARCHAR) AS id FROM range(10000) r(i)")
    assert warehouse.duplicated_values("u", "id") == 0


def test_a_trip_without_a_pickup_in_two_months_files_keeps_one_id(tmp_path):
    """The id's key holds the pickup; rows without one share it, so the later month's copy of
    such a trip is left out as any other id an earlier month owns."""
    schema = SCHEMAS["yellow"]
    pickup = read_header(write_month(schema, "2019-01", 10, tmp_path / "h"), file="h", partition="h").index(
        "tpep_pickup_datetime")
    no_pickup = {}

    def without_pickup(lines):
        fields = lines[1].split(",")
        fields[pickup] = ""
        no_pickup["line"] = ",".join(fields)
        return [lines[0], no_pickup["line"], *lines[2:]]

    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    for month, edit in (("2019-01", without_pickup),
                        ("2019-02", lambda lines: [lines[0], no_pickup["line"], *lines[1:]])):
        path = rewrite_csv(write_month(schema, month, 200, tmp_path / "gen", seed=3),
                           tmp_path / "edited" / schema.filename(month), edit)
        warehouse.load_bronze(schema, month, schema.filename(month), str(path))
        warehouse.build_silver(schema, month, schema.filename(month))
    owners = warehouse.query(f"SELECT filename FROM silver.{schema.table} WHERE {schema.pickup} IS NULL")
    assert owners == [(schema.filename("2019-01"),)]
    assert warehouse.duplicated_values(f"silver.{schema.table}", "unique_row_id") == 0
