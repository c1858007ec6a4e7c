"""Great Expectations on BigQuery: a SQLAlchemy dialect (sqlalchemy-bigquery's, with two additions)
and the URL GX validates through. Every metric is a query in BigQuery; nothing comes to pandas.

- **Layers to datasets.** The suites, their data assets and their SQL say ``bronze.<table>``,
  ``silver.<table>``, ``gold.fct_trips`` as on every backend; on BigQuery those live in the
  datasets ``<GCP_DATASET>_bronze`` and so on. The dialect rewrites the layer names of each
  statement it sends (quoted or not, outside string literals), as the warehouse resource does
  for its own queries (taxi_platform/warehouse/bigquery/sql.py:qualify_layers).
- **One function.** The suites' SQL rules are written in the SQL DuckDB and PostgreSQL share;
  ``date_trunc('month', x)`` is sent as GoogleSQL's ``DATE_TRUNC(x, MONTH)``.
- **An emulator.** With ``api_endpoint`` in the URL (``TAXI_BIGQUERY_API_ENDPOINT``) the client
  talks to that endpoint with anonymous credentials, as the warehouse resource's client does.

URL: ``bigquery+taxi_gx://<project>?location=US&dataset=<GCP_DATASET>[&api_endpoint=<url>]``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from sqlalchemy.dialects import registry
from sqlalchemy_bigquery import BigQueryDialect

from taxi_platform.warehouse.bigquery.sql import LAYERS, qualify_layers

_QUOTED_LAYER = re.compile(rf"`({'|'.join(LAYERS)})`\.")
# The suites' SQL rules are written once, in the SQL DuckDB and PostgreSQL share; the one function
# GoogleSQL spells otherwise is truncating a timestamp to its month.
_MONTH_TRUNC = re.compile(r"date_trunc\('month', (\w+)\)", re.IGNORECASE)


class TaxiBigQueryDialect(BigQueryDialect):
    """sqlalchemy-bigquery, with layer names as datasets and an optional API endpoint."""

    name = "bigquery"
    supports_statement_cache = False

    def create_connect_args(self, url):
        self._taxi_dataset = url.query.get("dataset", "taxi")
        endpoint = url.query.get("api_endpoint")
        url = url.difference_update_query(["dataset", "api_endpoint"])
        if not endpoint:
            return super().create_connect_args(url)
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        super().create_connect_args(url.update_query_dict({"user_supplied_client": "true"}))
        client = bigquery.Client(project=self.project_id, location=self.location,
                                 client_options=ClientOptions(api_endpoint=endpoint),
                                 credentials=AnonymousCredentials())
        return [], {"client": client}

    def _datasets(self, statement: str) -> str:
        dataset = getattr(self, "_taxi_dataset", "taxi")
        statement = _QUOTED_LAYER.sub(lambda m: f"`{dataset}_{m[1]}`.", statement)
        statement = _MONTH_TRUNC.sub(r"DATE_TRUNC(\1, MONTH)", statement)
        return qualify_layers(statement, f"{dataset}_bronze", f"{dataset}_silver", dataset)

    def do_execute(self, cursor, statement, parameters, context=None):
        super().do_execute(cursor, self._datasets(statement), parameters, context)

    def do_execute_no_params(self, cursor, statement, context=None):
        super().do_execute_no_params(cursor, self._datasets(statement), context)

    def get_columns(self, connection, table_name, schema=None, **kw):
        if schema in LAYERS:
            schema = f"{getattr(self, '_taxi_dataset', 'taxi')}_{schema}"
        return super().get_columns(connection, table_name, schema=schema, **kw)

    def has_table(self, connection, table_name, schema=None, **kw):
        if schema in LAYERS:
            schema = f"{getattr(self, '_taxi_dataset', 'taxi')}_{schema}"
        return super().has_table(connection, table_name, schema=schema, **kw)


TaxiBigQueryDialect.dialect = TaxiBigQueryDialect
registry.register("bigquery.taxi_gx", __name__, "TaxiBigQueryDialect")


def url(project: str, location: str, dataset: str, api_endpoint: str = "") -> str:
    query = {"location": location, "dataset": dataset, **({"api_endpoint": api_endpoint} if api_endpoint else {})}
    return f"bigquery+taxi_gx://{project}?{urlencode(query, quote_via=quote)}"
