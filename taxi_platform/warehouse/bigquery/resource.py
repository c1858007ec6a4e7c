"""The cloud warehouse: BigQuery (``TAXI_WAREHOUSE=bigquery``, usually with ``TAXI_LAKE=gcs``).

Settings (Kestra's names): ``GCP_PROJECT_ID``, ``GCP_LOCATION``, ``GCP_DATASET`` (the layers live in
the datasets ``<GCP_DATASET>_bronze`` and ``<GCP_DATASET>_silver``; SQL handed to ``query`` may
say ``bronze.<table>`` / ``silver.<table>`` as on the other backends), ``GCP_BUCKET_NAME`` (the
lake the load jobs read), credentials from ``GOOGLE_APPLICATION_CREDENTIALS``.

The port's steps (taxi_platform/warehouse/port.py) in BigQuery's own terms:

- landing: a load job from the month's GCS object (``gs://<bucket>/<colour>/<file>``; from the
  local file when no bucket is configured) into a staging table: a CSV every column STRING
  (or, with ``TAXI_BIGQUERY_BRONZE_VIA=external``, an external table over the object, as the old
  08_gcp_taxi flow did), a Parquet file with the types its schema declares (a NULL-typed column,
  such as green's ``ehail_fee``, as STRING: a load job cannot make a column of no type); then the
  rows go into ``bronze.<table>_landed`` as text under their load id, clustered by
  (``filename``, ``load_id``). ``bronze.<table>`` is the view of the published loads.
- silver: ``SAFE_CAST`` typing with quarantine, ``unique_row_id = TO_HEX(MD5(...))`` under the
  shared contract (amounts through NUMERIC, rounded half away from zero as DuckDB's
  DECIMAL(38, 4) then to two decimals, written with exactly two; datetimes by FORMAT_DATETIME),
  the month replaced in one multi-statement transaction; the table is partitioned by
  ``DATE(pickup)`` and clustered by ``filename``.
- cost: every query of a month filters on the clustering columns (``filename``, ``load_id``) or
  the partition column (``DATE(pickup)``), so it reads the month's blocks, not the table; the
  bytes each step's queries processed are in its metadata (``bytes_processed``).

Known differences from DuckDB/PostgreSQL, both because a BigQuery load job keeps no row order:
rows with the same id in one file collapse to a deterministic one (the smallest row as JSON
text), not necessarily the first in file order (the set of ids is the same); quarantined rows
carry no line number. No advisory locks exist: two writers of one month conflict and BigQuery
aborts one transaction ("concurrent update"), which the steps' retry policy runs again.

Emulator (``api_endpoint``, ``TAXI_BIGQUERY_API_ENDPOINT``; tested against bqemulator 1.4): the
same SQL runs there, with two accommodations that change nothing on BigQuery: the two
multi-statement scripts get their ``@parameters`` written in as literals when an endpoint is
set (bqemulator binds no parameters inside scripts; ``_script``), and the silver script's temp
tables carry a per-run tag (bqemulator keeps temp tables past the script; ``silver_script``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

from dagster import get_dagster_logger
from pydantic import Field

from taxi_platform import errors, files
from taxi_platform.files import FileContract
from taxi_platform.partitions import month_bounds
from taxi_platform.schemas import TripSchema
from taxi_platform.settings import setting
from taxi_platform.warehouse.bigquery.sql import (
    BQ_TYPES,
    LAYERS,
    inline_parameters,
    qualify_layers,
    silver_script,
    untypable_sql,
)
from taxi_platform.warehouse.port import (
    FileRowCounts,
    IncomingProfile,
    PublishedLoad,
    SilverResult,
    WarehouseResource,
)


class BigQueryWarehouseResource(WarehouseResource):
    # bucket is not here: it is the lake's bucket only when TAXI_LAKE=gcs (its default knows).
    ENV_FIELDS: ClassVar[dict[str, str]] = {
        "project": "GCP_PROJECT_ID", "location": "GCP_LOCATION", "dataset": "GCP_DATASET",
        "api_endpoint": "TAXI_BIGQUERY_API_ENDPOINT"}

    project: str = Field(default_factory=setting("gcp_project_id"),
                         description="GCP_PROJECT_ID (empty: from the credentials)")
    location: str = Field(default_factory=setting("gcp_location"), description="GCP_LOCATION")
    dataset: str = Field(default_factory=setting("gcp_dataset"),
                         description="GCP_DATASET: datasets <dataset>_bronze, <dataset>_silver")
    bucket: str = Field(default_factory=setting("bigquery_bucket"),
                        description="GCP_BUCKET_NAME when TAXI_LAKE=gcs: the lake the load jobs read")
    lake_prefix: str = Field(default="", description="object name prefix in the bucket")
    api_endpoint: str = Field(default_factory=setting("bigquery_api_endpoint"),
                              description="TAXI_BIGQUERY_API_ENDPOINT (an emulator); empty: Google's")
    bronze_via: str = Field(default_factory=setting("bigquery_bronze_via"), description=(
        "TAXI_BIGQUERY_BRONZE_VIA: 'load' (a load job copies the GCS object into a staging table) or "
        "'external' (an external table over the object, as the old 08_gcp_taxi flow did)"))

    # -- what the other layers ask ----------------------------------------------------------
    @property
    def name(self) -> str:
        return "bigquery"

    @property
    def bronze_dataset(self) -> str:
        return f"{self.dataset}_bronze"

    @property
    def silver_dataset(self) -> str:
        return f"{self.dataset}_silver"

    def _project(self) -> str:
        return self.project or self.client().project

    def _dataset_of(self, table: str) -> tuple[str, str]:
        layer, _, name = table.rpartition(".")
        return (f"{self.dataset}_{layer}" if layer in LAYERS else layer), name

    def table_name(self, table: str) -> str:
        """``project.dataset.table``, as BigQuery names it."""
        dataset, name = self._dataset_of(table)
        return f"{self.project or '<GCP_PROJECT_ID>'}.{dataset}.{name}"

    def table_url(self, table: str) -> str | None:
        """The table in the BigQuery console."""
        dataset, name = self._dataset_of(table)
        project = self.project or "_"
        return (f"https://console.cloud.google.com/bigquery?project={project}"
                f"&ws=!1m5!1m4!4m3!1s{project}!2s{dataset}!3s{name}")

    def identity(self) -> str:
        return f"bigquery:{self.project}:{self.dataset}"

    def gx_url(self) -> str:
        from taxi_platform.warehouse.bigquery import gx

        return gx.url(self._project(), self.location, self.dataset, self.api_endpoint)

    def dbt_env(self) -> dict[str, str]:
        return {**super().dbt_env(), "GCP_PROJECT_ID": self._project(), "GCP_LOCATION": self.location,
                "GCP_DATASET": self.dataset, "TAXI_BIGQUERY_API_ENDPOINT": self.api_endpoint}

    def client(self):
        from google.cloud import bigquery

        kwargs: dict[str, Any] = {"project": self.project or None, "location": self.location}
        if self.api_endpoint:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            kwargs.update(client_options=ClientOptions(api_endpoint=self.api_endpoint),
                          credentials=AnonymousCredentials())
        return bigquery.Client(**kwargs)

    # -- setup -----------------------------------------------------------------------------------
    def ensure_datasets(self, client=None) -> list[str]:
        """Create the bronze and silver datasets in ``location`` if missing; returns those made."""
        from google.api_core.exceptions import NotFound
        from google.cloud import bigquery

        client = client or self.client()
        made = []
        for name in (self.bronze_dataset, self.silver_dataset):
            try:
                client.get_dataset(name)
            except NotFound:
                ds = bigquery.Dataset(f"{client.project}.{name}")
                ds.location = self.location
                client.create_dataset(ds, exists_ok=True)
                made.append(name)
        return made

    def set_up(self) -> list[str]:
        made = self.ensure_datasets()
        return [f"dataset {name} {'created in ' + self.location if name in made else 'exists'}"
                for name in (self.bronze_dataset, self.silver_dataset)]

    def ensure_tables(self, schema: TripSchema) -> None:
        self._ensure_tables(self.client(), schema)

    def _ensure_tables(self, client, schema: TripSchema, extra_columns: list[str] = ()) -> None:
        """Create bronze's and silver's tables and view if missing (migrating the bronze table of
        an earlier version into the landed layout), with the columns the contract or a file added."""
        from google.api_core.exceptions import NotFound

        b, s = self.bronze_dataset, self.silver_dataset
        landed, loads = f"{b}.{schema.table}_landed", f"{b}.{schema.table}_loads"
        self.ensure_datasets(client)
        statements = []
        try:
            old = client.get_table(f"{b}.{schema.table}")
            if old.table_type == "TABLE":  # bronze before the landed layout: its files become loads
                statements += [
                    (f"CREATE TABLE IF NOT EXISTS {landed} CLUSTER BY filename, load_id AS "
                    f"SELECT *, CONCAT('before-', filename) AS load_id FROM {b}.{schema.table}"),
                    (f"CREATE TABLE IF NOT EXISTS {loads} AS SELECT SUBSTR(filename, STRPOS(filename, '_tripdata_') "
                    f"+ 10, 7) AS month, filename, load_id, COUNT(*) AS rows, CURRENT_TIMESTAMP() AS published_at "
                    f"FROM {landed} GROUP BY filename, load_id"),
                    f"DROP TABLE {b}.{schema.table}"]
        except NotFound:
            pass
        text = ", ".join(f"{c} STRING" for c in schema.sql_names)
        typed = ", ".join(f"{c.sql_name} {BQ_TYPES[c.type]}" for c in schema.columns)
        statements += [
            (f"CREATE TABLE IF NOT EXISTS {landed} ({text}, filename STRING, load_id STRING) "
            "CLUSTER BY filename, load_id"),
            (f"CREATE TABLE IF NOT EXISTS {loads} (month STRING, filename STRING, load_id STRING, rows INT64, "
            "published_at TIMESTAMP)"),
            (f"CREATE TABLE IF NOT EXISTS {s}.{schema.table} (unique_row_id STRING NOT NULL, "
            f"filename STRING NOT NULL, {typed}) PARTITION BY DATE({schema.pickup}) CLUSTER BY filename"),
            (f"CREATE TABLE IF NOT EXISTS {s}.{schema.table}_quarantine "
            f"(filename STRING, line_number INT64, reason STRING, {text})")]
        for statement in statements:
            client.query(statement).result()
        # Columns that joined the contract later, or that a file brought: added in place.
        have = {t: {f.name for f in client.get_table(t).schema}
                for t in (landed, f"{s}.{schema.table}", f"{s}.{schema.table}_quarantine")}
        alters = [f"ALTER TABLE {landed} ADD COLUMN {c} STRING"
                  for c in [*schema.sql_names, *extra_columns] if c not in have[landed]]
        alters += [f"ALTER TABLE {s}.{schema.table} ADD COLUMN {c.sql_name} {BQ_TYPES[c.type]}"
                   for c in schema.columns if c.sql_name not in have[f"{s}.{schema.table}"]]
        alters += [f"ALTER TABLE {s}.{schema.table}_quarantine ADD COLUMN {c} STRING"
                   for c in schema.sql_names if c not in have[f"{s}.{schema.table}_quarantine"]]
        for statement in alters:
            client.query(statement).result()
        shown = [f.name for f in client.get_table(landed).schema if f.name not in ("filename", "load_id")]
        client.query(f"CREATE OR REPLACE VIEW {b}.{schema.table} AS SELECT {', '.join(shown)}, filename "
                     f"FROM {landed} WHERE load_id IN (SELECT load_id FROM {loads})").result()

    # -- SQL -------------------------------------------------------------------------------------
    def _params(self, params: list[Any] | dict[str, Any]):
        from google.cloud import bigquery

        def param(name, value):
            kind = ("INT64" if isinstance(value, int) else "FLOAT64" if isinstance(value, float)
                    else "DATETIME" if isinstance(value, dt.datetime) else "DATE" if isinstance(value, dt.date)
                    else "STRING")
            return bigquery.ScalarQueryParameter(name, kind, value)

        if isinstance(params, dict):
            return [param(k, v) for k, v in params.items()]
        return [param(None, v) for v in params]

    def _run(self, sql: str, params=None, client=None):
        from google.cloud import bigquery

        client = client or self.client()
        config = bigquery.QueryJobConfig(query_parameters=self._params(params) if params else [])
        job = client.query(qualify_layers(sql, self.bronze_dataset, self.silver_dataset, self.dataset),
                           job_config=config)
        result = job.result()
        _BYTES.append(job.total_bytes_processed or 0)
        return result

    def _script(self, sql: str, params: dict[str, Any], client=None):
        """Run a multi-statement script with named parameters (``@name``). BigQuery binds
        query parameters in scripts; bqemulator (1.4) runs scripts without them ("Values
        were not provided for the following parameters"), so with an emulator endpoint
        (``api_endpoint``, the only case it is set) the same script is sent with the values
        written in as literals. Single statements keep bound parameters everywhere."""
        if self.api_endpoint:
            return self._run(inline_parameters(sql, params), client=client)
        return self._run(sql, params, client=client)

    def select(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
        """Run SQL (``?`` positional parameters); ``bronze.``/``silver.`` name the layers (and
        dbt's ``staging.``, ``seeds.``, ``gold.``, ``marts.``, as on the other backends)."""
        rows = self._run(sql, params)
        return [f.name for f in rows.schema], [tuple(row.values()) for row in rows]

    def describe(self, table: str) -> list[tuple[str, str]]:
        dataset, name = self._dataset_of(table)
        return [(f.name, f.field_type) for f in self.client().get_table(f"{dataset}.{name}").schema]

    def duplicate_ids(self, schema: TripSchema, filenames: list[str]) -> int:
        """Repeated ids among the rows picked up on the days the files' pickups fall on (and
        those without a pickup, when some of the files' have none): a repeat of one of their ids
        has the same pickup, so it can only be there (partitions, not the table; the bounds are
        constants, so BigQuery prunes)."""
        names = ", ".join(f"@f{i}" for i in range(len(filenames)))
        params = {f"f{i}": name for i, name in enumerate(filenames)}
        first, last, no_pickup = next(iter(self._run(
            f"SELECT MIN(DATE({schema.pickup})), MAX(DATE({schema.pickup})), COUNTIF({schema.pickup} IS NULL) "
            f"FROM silver.{schema.table} WHERE filename IN ({names})", params))).values()
        if first is None and not no_pickup:
            return 0
        unpicked = f" OR {schema.pickup} IS NULL" if no_pickup else ""
        return next(iter(self._run(
            f"SELECT COUNT(*) FROM (SELECT unique_row_id FROM silver.{schema.table} WHERE (DATE({schema.pickup}) "
            f"BETWEEN @first AND @last{unpicked}) GROUP BY 1 HAVING COUNT(*) > 1)",
            {"first": first or dt.date(1970, 1, 1), "last": last or dt.date(1970, 1, 1)})))[0]

    def file_row_counts(self, schema: TripSchema, filename: str) -> FileRowCounts:
        """Bronze's rows of the file and the days of their pickups (one read of the file's blocks:
        bronze is clustered by filename), then silver's rows of the file in those days'
        partitions only, and the quarantine's."""
        bronze, first, last = next(iter(self._run(
            f"SELECT COUNT(*), {self._pickup_days(schema)} FROM bronze.{schema.table} WHERE filename = @filename",
            {"filename": filename}))).values()
        silver, quarantined = next(iter(self._run(
            f"SELECT (SELECT COUNT(*) FROM silver.{schema.table} WHERE filename = @filename"
            f"{self._in_days(schema, first)}), "
            f"(SELECT COUNT(*) FROM silver.{schema.table}_quarantine WHERE filename = @filename)",
            {"filename": filename, **({"first": first, "last": last} if first else {})}))).values()
        return FileRowCounts(bronze, silver, quarantined)

    def silver_rows_by_file(self, schema: TripSchema, filenames: list[str]) -> dict[str, int]:
        """As on the other warehouses, reading only the partitions of the days bronze's rows of
        the files were picked up on (where silver's rows of them are)."""
        names = ", ".join(f"@f{i}" for i in range(len(filenames)))
        params: dict[str, Any] = {f"f{i}": name for i, name in enumerate(filenames)}
        first, last = next(iter(self._run(
            f"SELECT {self._pickup_days(schema)} FROM bronze.{schema.table} WHERE filename IN ({names})",
            params))).values()
        if first:
            params.update(first=first, last=last)
        return {row[0]: row[1] for row in self._run(
            f"SELECT filename, COUNT(*) FROM silver.{schema.table} WHERE filename IN ({names})"
            f"{self._in_days(schema, first)} GROUP BY filename", params)}

    @staticmethod
    def _pickup_days(schema: TripSchema) -> str:
        """The first and last day of the landed pickups, typed as silver types them."""
        day = f"DATE(SAFE_CAST(TRIM({schema.pickup}) AS DATETIME))"
        return f"MIN({day}), MAX({day})"

    @staticmethod
    def _in_days(schema: TripSchema, first) -> str:
        """A filter on silver's partition column, constant bounds (``@first``, ``@last``) so that
        BigQuery prunes; a row with no pickup is in the NULL partition. Empty when bronze no longer
        holds the file (silver's rows are then found by its clustering on filename alone)."""
        if not first:
            return ""
        return f" AND (DATE({schema.pickup}) BETWEEN @first AND @last OR {schema.pickup} IS NULL)"

    def source_uri(self, schema: TripSchema, filename: str) -> str | None:
        """The month's object in the GCS lake (the lake's key layout), when a bucket is set."""
        if not self.bucket:
            return None
        return f"gs://{self.bucket}/{self.lake_prefix}{schema.colour}/{filename}"

    @contextlib.contextmanager
    def metered(self) -> Iterator[list[int]]:
        """The bytes processed by every query job this process runs while the block runs."""
        start = len(_BYTES)
        counted: list[int] = []
        try:
            yield counted
        finally:
            counted.extend(_BYTES[start:])

    # -- bronze ----------------------------------------------------------------------------------
    @staticmethod
    def external_table(table_id: str, uri: str, columns: list[str]):
        """An external table over the CSV object at ``uri``: every column STRING, header skipped."""
        from google.cloud import bigquery

        config = bigquery.ExternalConfig("CSV")
        config.source_uris = [uri]
        config.schema = [bigquery.SchemaField(c, "STRING") for c in columns]
        config.max_bad_records = 0
        config.compression = "GZIP" if uri.endswith(".gz") else None
        config.options.skip_leading_rows = 1
        config.options.allow_quoted_newlines = True
        table = bigquery.Table(table_id)
        table.external_data_configuration = config
        return table

    def _prepare_bronze(self, schema: TripSchema, extra_columns: list[str]) -> None:
        self._ensure_tables(self.client(), schema, extra_columns)

    def _land(self, schema: TripSchema, filename: str, path: str, contract: FileContract, load_id: str,
              partition: str) -> None:
        from google.api_core.exceptions import BadRequest
        from google.cloud import bigquery

        client = self.client()
        staging = (f"{client.project}.{self.bronze_dataset}._load_{schema.table}_"
                   f"{hashlib.md5(filename.encode()).hexdigest()[:8]}_{uuid.uuid4().hex[:8]}")
        # the lake object where the published file is what lands (a mapped older layout is a local copy)
        uri = path if str(path).startswith("gs://") else (None if contract.derived else self.source_uri(schema, filename))
        bronze_columns = [column for _, column in contract.columns]
        if contract.format == files.PARQUET:
            # The file's own types; a NULL-typed column (no values, no physical type) as STRING.
            config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET,
                                            write_disposition=bigquery.WriteDisposition.WRITE_APPEND)
            client.create_table(bigquery.Table(staging, schema=_parquet_schema(path)))
            casts = ", ".join(f"CAST(`{name}` AS STRING)" for name, _ in contract.columns)
        else:
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.CSV, skip_leading_rows=1, field_delimiter=",",
                quote_character='"', allow_quoted_newlines=True, max_bad_records=0,
                schema=[bigquery.SchemaField(c, "STRING") for c in bronze_columns],
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
            casts = ", ".join(bronze_columns)
        try:
            if uri and self.bronze_via == "external" and contract.format != files.PARQUET:
                client.create_table(self.external_table(staging, uri, bronze_columns))  # read in place
            elif uri:
                client.load_table_from_uri(uri, staging, job_config=config).result()
            else:
                with open(path, "rb") as handle:
                    client.load_table_from_file(handle, staging, job_config=config).result()
            # (An external table reads the object here: a broken file fails at this statement.)
            self._run(f"INSERT INTO bronze.{schema.table}_landed ({', '.join(bronze_columns)}, filename, load_id) "
                      f"SELECT {casts}, @filename, @load_id FROM `{staging}`",
                      {"filename": filename, "load_id": load_id}, client=client)
        except BadRequest as exc:
            raise errors.BadInputError(
                f"{filename} (partition {partition}) could not be loaded into bronze.{schema.table}: "
                f"{exc.message}. The file is probably truncated or malformed: re-materialize its "
                "raw and lake assets.", file=filename, partition=partition) from None
        finally:
            client.delete_table(staging, not_found_ok=True)

    def _profile(self, schema: TripSchema, partition: str, filename: str, load_id: str) -> IncomingProfile:
        start, end = self._month_text_bounds(partition)
        any_bad = " OR ".join(f"({untypable_sql(c.sql_name, c.type)})" for c in schema.columns)
        rows, bad, in_month = next(iter(self._run(
            f"SELECT COUNT(*), COUNTIF({any_bad}), COUNTIF({schema.pickup} >= @start AND {schema.pickup} < @end) "
            f"FROM bronze.{schema.table}_landed WHERE filename = @filename AND load_id = @load_id",
            {"start": start, "end": end, "filename": filename, "load_id": load_id}))).values()
        by_column = self._untypable_by_column(schema, filename, load_id) if bad else []
        return IncomingProfile(rows, bad, in_month, by_column)

    def _untypable_by_column(self, schema: TripSchema, filename: str, load_id: str) -> list[tuple[str, int, str]]:
        counts = ", ".join(
            f"COUNTIF({untypable_sql(c.sql_name, c.type)}), "
            f"MIN(IF({untypable_sql(c.sql_name, c.type)}, {c.sql_name}, NULL))" for c in schema.columns)
        row = list(next(iter(self._run(
            f"SELECT {counts} FROM bronze.{schema.table}_landed WHERE filename = @filename AND load_id = @load_id",
            {"filename": filename, "load_id": load_id}))).values())
        return [(c.sql_name, row[2 * i], repr(row[2 * i + 1])) for i, c in enumerate(schema.columns) if row[2 * i]]

    def _publish(self, schema: TripSchema, partition: str, filename: str, load_id: str, rows: int,
                 untypable_rows: int | None = None) -> None:
        file_csv, file_parquet = schema.month_files(partition)
        self._script(f"""
            BEGIN TRANSACTION;
            DELETE FROM bronze.{schema.table}_landed WHERE filename IN (@file_csv, @file_parquet)
              AND load_id != @load_id;
            DELETE FROM bronze.{schema.table}_loads WHERE month = @month;
            INSERT INTO bronze.{schema.table}_loads (month, filename, load_id, rows, published_at)
              VALUES (@month, @filename, @load_id, @rows, CURRENT_TIMESTAMP());
            COMMIT TRANSACTION;""", {"file_csv": file_csv, "file_parquet": file_parquet, "load_id": load_id,
                                     "month": partition, "filename": filename, "rows": rows})

    def _discard_load(self, schema: TripSchema, filename: str, load_id: str) -> None:
        self._run(f"DELETE FROM bronze.{schema.table}_landed WHERE filename = @filename AND load_id = @load_id",
                  {"filename": filename, "load_id": load_id})

    def _discard_unpublished(self, schema: TripSchema, partition: str) -> None:
        file_csv, file_parquet = schema.month_files(partition)
        self._run(f"DELETE FROM bronze.{schema.table}_landed WHERE filename IN (@file_csv, @file_parquet) "
                  f"AND load_id NOT IN (SELECT load_id FROM bronze.{schema.table}_loads)",
                  {"file_csv": file_csv, "file_parquet": file_parquet})

    # -- silver ----------------------------------------------------------------------------------
    def _build_silver(self, schema: TripSchema, partition: str, load: PublishedLoad,
                      max_quarantine_fraction: float) -> SilverResult:
        client = self.client()
        self._ensure_tables(client, schema)
        filename, load_id = load.filename, load.load_id
        landed = f"{self.bronze_dataset}.{schema.table}_landed"
        silver, quarantine = f"{self.silver_dataset}.{schema.table}", f"{self.silver_dataset}.{schema.table}_quarantine"
        start, end = month_bounds(partition)
        file_csv, file_parquet = schema.month_files(partition)
        # Read-only first: the typing gate, the reasons by column, and the days of the month's
        # pickups (where another month's row with one of its ids can be).
        by_column = self._untypable_by_column(schema, filename, load_id)
        any_bad = " OR ".join(f"({untypable_sql(c.sql_name, c.type)})" for c in schema.columns)
        total, bad_rows, first_day, last_day = next(iter(self._run(
            f"SELECT COUNT(*), COUNTIF({any_bad}), MIN(DATE(SAFE_CAST(TRIM({schema.pickup}) AS DATETIME))), "
            f"MAX(DATE(SAFE_CAST(TRIM({schema.pickup}) AS DATETIME))) FROM {landed} "
            "WHERE filename = @filename AND load_id = @load_id",
            {"filename": filename, "load_id": load_id}, client=client))).values()
        if bad_rows / total > max_quarantine_fraction:
            raise errors.too_many_untypable(filename, partition, total, bad_rows, by_column, max_quarantine_fraction)
        result = self._script(silver_script(schema, landed, silver, quarantine, f"_{uuid.uuid4().hex[:8]}"), {
            "filename": filename, "load_id": load_id, "file_csv": file_csv, "file_parquet": file_parquet,
            "month_start": start, "month_end": end, "first_day": first_day or start.date(),
            "last_day": last_day or start.date()}, client=client)
        rows_in, bad, distinct, rows_out, outside = next(iter(result)).values()
        if bad:
            get_dagster_logger().warning(f"{filename}: {bad} rows quarantined in {quarantine}")
        return SilverResult(
            filename=filename, rows_in=rows_in, rows_out=rows_out,
            duplicates_collapsed=(rows_in - bad) - distinct, duplicates_in_other_files=distinct - rows_out,
            rows_quarantined=bad, quarantine_reasons=by_column, pickups_outside_month=outside)


_BYTES: list[int] = []  # bytes processed by each query job this process ran (counting_bytes)


def _parquet_schema(path: str):
    """A BigQuery schema for a Parquet file's columns: its types, a NULL-typed column as STRING."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from google.cloud import bigquery

    def kind(t) -> str:
        if pa.types.is_integer(t):
            return "INT64"
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "FLOAT64"
        if pa.types.is_timestamp(t):
            return "TIMESTAMP" if t.tz else "DATETIME"
        if pa.types.is_date(t):
            return "DATE"
        if pa.types.is_boolean(t):
            return "BOOL"
        return "STRING"

    return [bigquery.SchemaField(f.name, kind(f.type)) for f in pq.read_schema(path)]
