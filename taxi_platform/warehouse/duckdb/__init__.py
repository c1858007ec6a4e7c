"""The embedded default warehouse: one DuckDB file (resource.py)."""

from taxi_platform.warehouse.duckdb.resource import DuckDBWarehouseResource

__all__ = ["DuckDBWarehouseResource"]
