"""The self-hosted warehouse: PostgreSQL (resource.py)."""

from taxi_platform.warehouse.postgres.resource import PostgresConnectionError, PostgresWarehouseResource

__all__ = ["PostgresConnectionError", "PostgresWarehouseResource"]
