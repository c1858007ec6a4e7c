"""The PostgreSQL warehouse's pieces that need no server: placeholders, the decompressed
stream COPY reads, the SQL of the id contract, and the factory that picks the backend."""

from __future__ import annotations

import gzip

import pytest

from taxi_platform.files import open_binary
from taxi_platform.resources import build_warehouse
from taxi_platform.schemas import GREEN, TEXT, TIMESTAMP, YELLOW
from taxi_platform.settings import Settings
from taxi_platform.warehouse.postgres.resource import (
    PostgresWarehouseResource,
    qmark_to_pyformat,
    quick_gate_sql,
    quick_keyed_sql,
    unique_row_id_sql,
)


def test_question_mark_placeholders_become_psycopg2_placeholders_outside_quotes():
    assert qmark_to_pyformat("SELECT ? WHERE a = ?") == "SELECT %s WHERE a = %s"
    assert qmark_to_pyformat("SELECT '?', \"a?\", ? LIKE 'x%'") == "SELECT '?', \"a?\", %s LIKE 'x%%'"
    assert qmark_to_pyformat("SELECT 5 % 2, ?") == "SELECT 5 %% 2, %s"


def test_copy_reads_a_gzip_file_decompressed_and_a_plain_file_as_it_is(tmp_path):
    text = b"a,b\r\n1,2\r\n"
    gz, plain = tmp_path / "f.csv.gz", tmp_path / "f.csv"
    with gzip.open(gz, "wb") as out:
        out.write(text)
    plain.write_bytes(text)
    for path in (gz, plain):
        with open_binary(str(path)) as stream:
            assert stream.read() == text


def test_the_id_is_md5_of_the_key_columns_in_contract_order_with_two_decimal_amounts():
    sql = unique_row_id_sql(YELLOW)
    assert sql.startswith("md5(") and sql.count("'|'") == len(YELLOW.key_columns) - 1
    order = [sql.index(c) for c in ("vendorid", "tpep_pickup_datetime", "tpep_dropoff_datetime",
                                    "pulocationid", "dolocationid", "fare_amount__dec", "trip_distance__dec")]
    assert order == sorted(order)
    assert "'YYYY-MM-DD HH24:MI:SS'" in sql and "numeric(38,2)" in sql


@pytest.mark.parametrize("schema", [YELLOW, GREEN], ids=["yellow", "green"])
def test_the_quick_typing_hashes_the_same_key_in_the_same_order_and_reads_every_typed_column(schema):
    keyed, careful = quick_keyed_sql(schema, "landed"), unique_row_id_sql(schema)
    key = keyed[keyed.index("md5("):keyed.index(" AS unique_row_id")]
    assert key.count("'|'") == careful.count("'|'") == len(schema.key_columns) - 1
    order = [key.index(c) for c in schema.key_columns]
    assert order == sorted(order)
    assert "numeric(38,4)" in key and "numeric(38,2)" in key  # amounts to 4 decimals, then 2
    gate = quick_gate_sql(schema, "landed")
    for column in schema.columns:
        assert (column.sql_name in gate) == (column.type != TEXT), column.sql_name
        if column.type == TIMESTAMP:  # only text that prints back as itself, else give up
            assert f"{column.sql_name}::timestamp::text = {column.sql_name}" in gate
            assert f"1 / (octet_length({column.sql_name}) * 0)" in gate


def test_taxi_warehouse_postgres_builds_the_postgres_warehouse_without_a_password_in_config(monkeypatch):
    monkeypatch.setenv("TAXI_PG_DSN", "postgresql://u:secret@db:5432/taxi")
    warehouse = build_warehouse(Settings.from_env({"TAXI_WAREHOUSE": "postgres"}))
    assert isinstance(warehouse, PostgresWarehouseResource) and warehouse.name == "postgres"
    assert warehouse.dsn == "" and warehouse.resolved_dsn() == "postgresql://u:secret@db:5432/taxi"


def test_an_unknown_warehouse_names_the_ones_there_are():
    with pytest.raises(ValueError, match="duckdb, postgres, bigquery"):
        build_warehouse(Settings.from_env({"TAXI_WAREHOUSE": "oracle"}))
