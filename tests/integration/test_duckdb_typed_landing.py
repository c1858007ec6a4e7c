"""DuckDB lands a month whose every value types into a typed table, and any other month as text
(taxi_platform/warehouse/duckdb/resource.py): silver gets the same rows and ids either way, and
the bronze gate reads both as text."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from taxi_platform.sample_source import write_month, write_month_parquet
from taxi_platform.schemas import PARQUET, SCHEMAS
from taxi_platform.warehouse.duckdb import DuckDBWarehouseResource

YELLOW = SCHEMAS["yellow"]


def _text_only(monkeypatch) -> None:
    """Land every file as text, as DuckDB did before typed loads (and still does a file with a
    value that does not type)."""
    monkeypatch.setattr(DuckDBWarehouseResource, "_insert_typed", lambda self, *args, **kwargs: False)


def _load(warehouse, schema, month: str, path: Path, name: str | None = None):
    name = name or path.name
    bronze = warehouse.load_bronze(schema, month, name, str(path))
    silver = warehouse.build_silver(schema, month, name)
    return bronze, silver


def _landed_where(warehouse, schema) -> dict[str, int]:
    return {kind: warehouse.query(f"SELECT count(*) FROM bronze.{schema.table}_landed_{kind}")[0][0]
            for kind in ("typed", "text")}


def _silver_and_quarantine(warehouse, schema) -> tuple[list[tuple], list[tuple]]:
    return (warehouse.query(f"SELECT * FROM silver.{schema.table} ORDER BY unique_row_id"),
            warehouse.query(f"SELECT * FROM silver.{schema.table}_quarantine ORDER BY filename, line_number"))


def _both_ways(tmp_path, monkeypatch, schema, month: str, path: Path):
    typed = DuckDBWarehouseResource(path=str(tmp_path / "typed.duckdb"))
    typed_results = _load(typed, schema, month, path)
    with monkeypatch.context() as patched:
        _text_only(patched)
        text = DuckDBWarehouseResource(path=str(tmp_path / "text.duckdb"))
        text_results = _load(text, schema, month, path)
    return (typed, typed_results), (text, text_results)


@pytest.mark.parametrize("colour", ["yellow", "green"])
def test_a_real_month_is_landed_typed_and_gives_silver_exactly_what_its_text_gives(
        tlc_dir, tmp_path, monkeypatch, colour):
    schema = SCHEMAS[colour]
    path = tlc_dir / f"mirror/{colour}/{colour}_tripdata_2019-01.csv.gz"
    (typed, (typed_bronze, typed_silver)), (text, (text_bronze, text_silver)) = _both_ways(
        tmp_path, monkeypatch, schema, "2019-01", path)
    assert _landed_where(typed, schema) == {"typed": typed_bronze.rows, "text": 0}
    assert _landed_where(text, schema) == {"typed": 0, "text": text_bronze.rows}
    assert typed_silver == text_silver
    assert _silver_and_quarantine(typed, schema) == _silver_and_quarantine(text, schema)


def test_every_real_head_is_landed_typed_with_the_ids_of_its_text(tlc_dir, tmp_path, monkeypatch):
    for colour in ("yellow", "green"):
        schema = SCHEMAS[colour]
        typed = DuckDBWarehouseResource(path=str(tmp_path / f"{colour}-typed.duckdb"))
        text = DuckDBWarehouseResource(path=str(tmp_path / f"{colour}-text.duckdb"))
        heads = sorted((tlc_dir / "heads").glob(f"{colour}_tripdata_*.csv"))
        assert heads
        for head in heads:
            month = head.stem.rsplit("_", 1)[1]
            _load(typed, schema, month, head, schema.filename(month))
            with monkeypatch.context() as patched:
                _text_only(patched)
                _load(text, schema, month, head, schema.filename(month))
        assert _landed_where(typed, schema)["text"] == 0, colour
        assert _silver_and_quarantine(typed, schema) == _silver_and_quarantine(text, schema), colour


@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_a_synthetic_month_with_repeated_ids_gives_the_same_silver_typed_as_text(tmp_path, monkeypatch, form):
    if form == "csv":
        path = write_month(YELLOW, "2024-03", 30_000, tmp_path / "source", seed=7)
    else:
        path = write_month_parquet(YELLOW, "2024-03", 30_000, tmp_path / "source", seed=7)
    (typed, (_, typed_silver)), (text, (_, text_silver)) = _both_ways(
        tmp_path, monkeypatch, YELLOW, "2024-03", path)
    assert _landed_where(typed, YELLOW)["text"] == 0
    assert typed_silver == text_silver
    assert _silver_and_quarantine(typed, YELLOW) == _silver_and_quarantine(text, YELLOW)
    if form == "parquet":
        assert path.name.endswith(PARQUET)


def _edited_copy(source: Path, target: Path, edit, line: int = 2) -> Path:
    """The gzipped CSV ``source`` with ``edit(fields)`` applied to its ``line`` (the header is
    line 1)."""
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()
    fields = lines[line - 1].split(",")
    edit(fields)
    lines[line - 1] = ",".join(fields)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return target


def test_a_file_with_a_value_that_does_not_type_is_landed_as_text_and_the_row_quarantined_with_it(
        tlc_dir, tmp_path):
    header = gzip.decompress((tlc_dir / "mirror/yellow/yellow_tripdata_2019-01.csv.gz").read_bytes()
                             ).decode().splitlines()[0].split(",")

    def garbage(fields):
        fields[header.index("tip_amount")] = "inf"
    path = _edited_copy(tlc_dir / "mirror/yellow/yellow_tripdata_2019-01.csv.gz",
                        tmp_path / "edited/yellow_tripdata_2019-01.csv.gz", garbage)
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    bronze, silver = _load(warehouse, YELLOW, "2019-01", path)
    assert _landed_where(warehouse, YELLOW) == {"typed": 0, "text": bronze.rows}
    assert silver.rows_quarantined == 1
    assert warehouse.query("SELECT line_number, reason FROM silver.yellow_tripdata_quarantine") == [
        (2, "tip_amount: cannot read 'inf' as DOUBLE")]


def test_a_timestamp_the_gate_would_not_read_is_landed_as_the_text_it_was(tlc_dir, tmp_path):
    """'2019-1-1 0:46:40' types, but is not written as the bronze gate wants: it is landed as text,
    so that the gate judges the file's own text (a typed value would read back as 2019-01-01
    00:46:40)."""
    header = gzip.decompress((tlc_dir / "mirror/yellow/yellow_tripdata_2019-01.csv.gz").read_bytes()
                             ).decode().splitlines()[0].split(",")
    column = header.index("tpep_pickup_datetime")

    def unpadded(fields):
        fields[column] = "2019-1-1 0:46:40"
    path = _edited_copy(tlc_dir / "mirror/yellow/yellow_tripdata_2019-01.csv.gz",
                        tmp_path / "edited/yellow_tripdata_2019-01.csv.gz", unpadded)
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    bronze = warehouse.load_bronze(YELLOW, "2019-01", path.name, str(path))
    assert _landed_where(warehouse, YELLOW) == {"typed": 0, "text": bronze.rows}
    assert warehouse.query("SELECT count(*) FROM bronze.yellow_tripdata "
                           "WHERE tpep_pickup_datetime = '2019-1-1 0:46:40'") == [(1,)]


def test_the_landed_view_shows_a_typed_load_with_the_timestamps_of_the_file(tlc_dir, tmp_path):
    path = tlc_dir / "mirror/yellow/yellow_tripdata_2019-01.csv.gz"
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    bronze = warehouse.load_bronze(YELLOW, "2019-01", path.name, str(path))
    assert _landed_where(warehouse, YELLOW)["typed"] == bronze.rows
    (differing,), = warehouse.query(
        "SELECT count(*) FROM (SELECT tpep_pickup_datetime, tpep_dropoff_datetime FROM bronze.yellow_tripdata "
        "EXCEPT ALL SELECT tpep_pickup_datetime, tpep_dropoff_datetime FROM read_csv(?, all_varchar = true))",
        [str(path)])
    assert differing == 0
    assert warehouse.describe("bronze.yellow_tripdata_landed")[1] == ("tpep_pickup_datetime", "VARCHAR")


def test_a_warehouse_from_before_typed_loads_keeps_its_months_and_takes_new_ones_typed(
        tlc_dir, tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    january = tlc_dir / "mirror/yellow/yellow_tripdata_2019-01.csv.gz"
    with monkeypatch.context() as patched:
        _text_only(patched)
        warehouse = DuckDBWarehouseResource(path=str(path))
        _load(warehouse, YELLOW, "2019-01", january)
    before = _silver_and_quarantine(warehouse, YELLOW)
    # the layout before: one landed table of text, bronze.yellow_tripdata_landed
    for sql in ("DROP VIEW bronze.yellow_tripdata", "DROP VIEW bronze.yellow_tripdata_landed",
                "DROP TABLE bronze.yellow_tripdata_landed_typed",
                "ALTER TABLE bronze.yellow_tripdata_landed_text RENAME TO yellow_tripdata_landed",
                "CREATE VIEW bronze.yellow_tripdata AS SELECT * EXCLUDE (load_id) FROM bronze.yellow_tripdata_landed"):
        warehouse.query(sql)
    # silver first, before any new load: the month kept as text builds again
    warehouse.build_silver(YELLOW, "2019-01", january.name)
    assert _silver_and_quarantine(warehouse, YELLOW) == before

    february = write_month(YELLOW, "2019-02", 2_000, tmp_path / "source", seed=3)
    _load(warehouse, YELLOW, "2019-02", february)
    assert warehouse.query("SELECT filename, count(*) FROM bronze.yellow_tripdata GROUP BY 1 ORDER BY 1") == [
        (january.name, 10_000), (february.name, 2_000)]
    assert _landed_where(warehouse, YELLOW) == {"typed": 2_000, "text": 10_000}
    warehouse.build_silver(YELLOW, "2019-01", january.name)  # the month kept as text builds again
    january_silver = warehouse.query("SELECT * FROM silver.yellow_tripdata WHERE filename = ? "
                                     "ORDER BY unique_row_id", [january.name])
    assert january_silver == before[0]


def test_a_quarantined_row_keeps_its_line_in_the_file_whatever_was_loaded_before_it(tlc_dir, tmp_path):
    """Lines are counted from a load's first row: here after another month's rows, and after a
    month loaded again (its earlier rows deleted, the new ones after February's)."""
    def infinite_tip(header):
        return lambda fields: fields.__setitem__(header.index("tip_amount"), "inf")
    january_source = tlc_dir / "mirror/yellow/yellow_tripdata_2019-01.csv.gz"
    february_source = write_month(YELLOW, "2019-02", 2_000, tmp_path / "source", seed=5)
    header = gzip.decompress(january_source.read_bytes()).decode().splitlines()[0].split(",")
    january = _edited_copy(january_source, tmp_path / "edited/yellow_tripdata_2019-01.csv.gz",
                           infinite_tip(header), line=5)
    header = gzip.decompress(february_source.read_bytes()).decode().splitlines()[0].split(",")
    february = _edited_copy(february_source, tmp_path / "edited/yellow_tripdata_2019-02.csv.gz",
                            infinite_tip(header), line=1_500)
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    for month, path in (("2019-01", january), ("2019-02", february), ("2019-01", january)):
        _load(warehouse, YELLOW, month, path)
    assert warehouse.query("SELECT filename, line_number FROM silver.yellow_tripdata_quarantine ORDER BY 1") == [
        (january.name, 5), (february.name, 1_500)]
