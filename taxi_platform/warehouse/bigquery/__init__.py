"""The cloud warehouse: BigQuery (resource.py)."""

from taxi_platform.warehouse.bigquery.resource import BigQueryWarehouseResource

__all__ = ["BigQueryWarehouseResource"]
