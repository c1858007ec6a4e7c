"""The warehouse: one port (taxi_platform/warehouse/port.py), one package per backend.

| backend | package | what it is best at |
|---|---|---|
| DuckDB (the embedded default) | ``warehouse/duckdb/`` | one file, read_csv/read_parquet, one writer |
| PostgreSQL | ``warehouse/postgres/`` | COPY, parallel typing, advisory locks |
| BigQuery | ``warehouse/bigquery/`` | load jobs, multi-statement transactions |
"""

from taxi_platform.warehouse.port import BronzeResult, SilverResult, WarehouseResource

__all__ = ["BronzeResult", "SilverResult", "WarehouseResource"]
