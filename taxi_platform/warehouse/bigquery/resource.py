"""The cloud warehouse: BigQuery (``TAXI_WAREHOUSE=bigquery``, usually with ``TAXI_LAKE=gcs``).

Settings (Kestra's names): ``GCP_PROJECT_ID``, ``GCP_LOCATION``, ``GCP_DATASET`` (the layers live in
the datasets ``<GCP_DATASET>_bronze`` and ``<GCP_DATASET>_silver``; SQL handed to ``query`` may
say ``bronze.<table>`` / ``silver.<table>`` as on the other backends), ``GCP_BUCKET_NAME`` (the
lake the load jobs read), credentials from ``GOOGLE_APPLICATION_CREDENTIALS``.

- bronze: a load job from the month's GCS object (``gs://<bucket>/<colour>/<file>``; from the
  local file when no bucket is configured) into a staging table, every column STRING; then
  one multi-statement transaction replaces the file's rows in ``bronze.<table>``.
- silver: ``SAFE_CAST`` typing with quarantine, ``unique_row_id = TO_HEX(MD5(...))`` under the
  shared contract (amounts through NUMERIC, rounded half away from zero as DuckDB's
  DECIMAL(38, 4) then to two decimals, written with exactly two; datetimes by FORMAT_DATETIME),
  the month replaced in one transaction; the table is partitioned by ``DATE(pickup)`` and
  clustered by ``filename``.

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

import datetime as dt
import hashlib
import re
import uuid
from typing import Any

from dagster import get_dagster_logger
from pydantic import Field

from taxi_platform.errors import BadInputError
from taxi_platform.partitions import month_bounds
from taxi_platform.schemas import DOUBLE, INTEGER, TEXT, TIMESTAMP, TripSchema
from taxi_platform.settings import setting
from taxi_platform.warehouse import BronzeResult, SilverResult, WarehouseResource

_BQ_TYPES = {INTEGER: "INT64", TIMESTAMP: "DATETIME", DOUBLE: "FLOAT64", TEXT: "STRING"}
_REASON_TYPES = {INTEGER: "INTEGER", TIMESTAMP: "TIMESTAMP", DOUBLE: "DOUBLE", TEXT: "VARCHAR"}
_KEY_AMOUNTS = ("fare_amount", "trip_distance")
_LAYERS = ("bronze", "silver", "staging", "seeds", "gold", "marts")  # dbt: macros/generate_schema_name.sql
_LAYER_NAME = re.compile(rf"(?<![\w.`])({'|'.join(_LAYERS)})\.(\w+)")


# -- SQL builders (BigQuery GoogleSQL; pure functions, tested without a server) ---------------
def typed_sql(column: str, kind: str) -> str:
    """The landed STRING ``column`` as its silver type, NULL when it cannot be read (the
    values DuckDB's TRY_CAST reads: whole numbers only for integers, 32-bit range)."""
    if kind == TEXT:
        return column
    f64 = f"SAFE_CAST(TRIM({column}) AS FLOAT64)"
    if kind == INTEGER:
        return (f"IF({f64} = FLOOR({f64}) AND {f64} BETWEEN -2147483648 AND 2147483647, "
                f"CAST({f64} AS INT64), NULL)")
    if kind == DOUBLE:
        return f64
    if kind == TIMESTAMP:
        return f"SAFE_CAST(TRIM({column}) AS DATETIME)"
    raise ValueError(kind)


def decimal_sql(column: str) -> str:
    """The landed text as NUMERIC rounded to four decimals (DuckDB's DECIMAL(38, 4))."""
    return f"ROUND(SAFE_CAST(TRIM({column}) AS NUMERIC), 4)"


def untypable_sql(column: str, kind: str) -> str:
    if kind == TEXT:
        return "FALSE"
    return f"({column} IS NOT NULL AND TRIM({column}) <> '' AND {typed_sql(column, kind)} IS NULL)"


def key_text_sql(column: str, kind: str) -> str:
    """A key column as the text hashed into unique_row_id (from the typed temp table)."""
    if kind == TIMESTAMP:
        return f"COALESCE(FORMAT_DATETIME('%Y-%m-%d %H:%M:%S', {column}), '')"
    if column in _KEY_AMOUNTS:
        # Whole cents, then '<units>.<cents>' with exactly two digits (NUMERIC has no -0).
        cents = f"CAST(ROUND({column}__dec, 2) * 100 AS INT64)"
        return (f"COALESCE(CONCAT(IF({cents} < 0, '-', ''), CAST(DIV(ABS({cents}), 100) AS STRING), "
                f"'.', LPAD(CAST(MOD(ABS({cents}), 100) AS STRING), 2, '0')), '')")
    return f"COALESCE(CAST({column} AS STRING), '')"


def unique_row_id_sql(schema: TripSchema) -> str:
    return "TO_HEX(MD5(" + " || '|' || ".join(
        key_text_sql(c, schema.column(c).type) for c in schema.key_columns) + "))"


def typed_select_sql(schema: TripSchema, source: str) -> str:
    """SELECT over the landed rows of ``source`` (filtered by @filename): typed columns,
    the key amounts as decimals, the raw text, and the quarantine reason."""
    typed_cols = ",\n  ".join(f"{typed_sql(c.sql_name, c.type)} AS {c.sql_name}" for c in schema.columns)
    decimals = ",\n  ".join(f"{decimal_sql(c)} AS {c}__dec" for c in _KEY_AMOUNTS)
    raw_cols = ",\n  ".join(f"{c} AS {c}__raw" for c in schema.sql_names)
    reasons = ", ".join(
        f"IF({c.sql_name}__raw IS NOT NULL AND TRIM({c.sql_name}__raw) <> '' AND {c.sql_name} IS NULL, "
        # (GoogleSQL escapes a quote with a backslash, so the texts are double-quoted)
        f"CONCAT(\"{c.sql_name}: cannot read '\", {c.sql_name}__raw, \"' as {_REASON_TYPES[c.type]}\"), NULL)"
        for c in schema.columns if c.type != TEXT)
    return (f"SELECT *, NULLIF(ARRAY_TO_STRING([{reasons}], '; '), '') AS reason FROM (\n"
            f"  SELECT {typed_cols},\n  {decimals},\n  {raw_cols}\n"
            f"  FROM {source} WHERE filename = @filename)")


def silver_script(schema: TripSchema, bronze: str, silver: str, quarantine: str, tag: str = "") -> str:
    """One multi-statement transaction replacing the file's rows in silver and quarantine;
    ends with a SELECT of (rows_in, bad, distinct, rows_out, outside). ``tag`` ends the names
    of the script's two temp tables: BigQuery scopes temp tables to the script, but an
    emulator (bqemulator 1.4) keeps them for its lifetime in one namespace, so a re-run or a
    concurrent script (another colour) would find them there; a fresh tag per run avoids it."""
    cols = ", ".join(schema.sql_names)
    raw = ", ".join(f"{c}__raw" for c in schema.sql_names)
    pickup = schema.pickup
    typed, keyed = f"_typed{tag}", f"_keyed{tag}"
    return f"""
BEGIN TRANSACTION;
CREATE TEMP TABLE {typed} AS {typed_select_sql(schema, bronze)};
CREATE TEMP TABLE {keyed} AS
  SELECT {unique_row_id_sql(schema)} AS unique_row_id, {cols} FROM {typed} WHERE reason IS NULL;
DELETE FROM {quarantine} WHERE filename = @filename;
INSERT INTO {quarantine} (filename, line_number, reason, {cols})
  SELECT @filename, CAST(NULL AS INT64), reason, {raw} FROM {typed} WHERE reason IS NOT NULL;
DELETE FROM {silver} WHERE filename = @filename;
DELETE FROM {silver} WHERE filename > @filename
  AND unique_row_id IN (SELECT unique_row_id FROM {keyed});
INSERT INTO {silver} (unique_row_id, filename, {cols})
  SELECT unique_row_id, @filename, {cols} FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY unique_row_id ORDER BY TO_JSON_STRING(k)) AS n
    FROM {keyed} k
    WHERE unique_row_id NOT IN (SELECT unique_row_id FROM {silver} WHERE filename < @filename))
  WHERE n = 1;
COMMIT TRANSACTION;
SELECT (SELECT COUNT(*) FROM {typed}) AS rows_in,
       (SELECT COUNTIF(reason IS NOT NULL) FROM {typed}) AS bad,
       (SELECT COUNT(DISTINCT unique_row_id) FROM {keyed}) AS distinct_ids,
       (SELECT COUNT(*) FROM {silver} WHERE filename = @filename) AS rows_out,
       (SELECT COUNTIF({pickup} < @month_start OR {pickup} >= @month_end) FROM {silver}
        WHERE filename = @filename) AS outside;
"""


_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)""")
_NAMED_PARAM = re.compile(r"(?<!@)@(\w+)")  # not @@system_variables


def sql_literal(value: Any) -> str:
    """``value`` as a GoogleSQL literal (datetimes as DATETIME, as ``_params`` binds them)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"CAST('{value!r}' AS FLOAT64)"
    if isinstance(value, dt.datetime):
        return f"DATETIME '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATETIME '{value.isoformat()} 00:00:00'"
    text = str(value)
    for char, escaped in (("\\", "\\\\"), ("'", "\\'"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.replace(char, escaped)
    return f"'{text}'"


def inline_parameters(sql: str, params: dict[str, Any]) -> str:
    """``sql`` with each ``@name`` (outside quoted strings) replaced by its value as a
    literal. Only for an emulator that binds no parameters inside scripts (see
    ``BigQueryWarehouseResource._script``); a name without a value is an error."""
    def literal(match: re.Match) -> str:
        if match[1] not in params:
            raise KeyError(f"no value for query parameter @{match[1]}")
        return sql_literal(params[match[1]])

    parts = _QUOTED.split(sql)
    return "".join(p if i % 2 else _NAMED_PARAM.sub(literal, p) for i, p in enumerate(parts))


def qualify_layers(sql: str, bronze_dataset: str, silver_dataset: str, dataset: str = "") -> str:
    """``bronze.<t>``/``silver.<t>`` (as the assets and tools write them) as this
    warehouse's datasets, outside quoted strings; with ``dataset`` (GCP_DATASET) also dbt's
    layers ``staging``, ``seeds``, ``gold``, ``marts`` as ``<dataset>_<layer>``, where dbt
    builds them on BigQuery."""
    names = {"bronze": bronze_dataset, "silver": silver_dataset,
             **{layer: f"{dataset}_{layer}" if dataset else layer for layer in _LAYERS[2:]}}
    parts = _QUOTED.split(sql)
    return "".join(p if i % 2 else _LAYER_NAME.sub(lambda m: f"{names[m[1]]}.{m[2]}", p)
                   for i, p in enumerate(parts))


class BigQueryWarehouseResource(WarehouseResource):
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

    @property
    def name(self) -> str:
        return "bigquery"

    @property
    def bronze_dataset(self) -> str:
        return f"{self.dataset}_bronze"

    @property
    def silver_dataset(self) -> str:
        return f"{self.dataset}_silver"

    def client(self):
        from google.cloud import bigquery

        kwargs: dict[str, Any] = {"project": self.project or None, "location": self.location}
        if self.api_endpoint:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            kwargs.update(client_options=ClientOptions(api_endpoint=self.api_endpoint),
                          credentials=AnonymousCredentials())
        return bigquery.Client(**kwargs)

    # -- setup ---------------------------------------------------------------------------
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

    def _ensure_tables(self, client, schema: TripSchema) -> None:
        text = ", ".join(f"{c} STRING" for c in schema.sql_names)
        typed = ", ".join(f"{c.sql_name} {_BQ_TYPES[c.type]}" for c in schema.columns)
        b, s = self.bronze_dataset, self.silver_dataset
        self.ensure_datasets(client)
        client.query(f"""
            CREATE TABLE IF NOT EXISTS {b}.{schema.table} ({text}, filename STRING) CLUSTER BY filename;
            CREATE TABLE IF NOT EXISTS {s}.{schema.table} (unique_row_id STRING NOT NULL,
              filename STRING NOT NULL, {typed})
              PARTITION BY DATE({schema.pickup}) CLUSTER BY filename;
            CREATE TABLE IF NOT EXISTS {s}.{schema.table}_quarantine
              (filename STRING, line_number INT64, reason STRING, {text});
            """).result()

    # -- generic -------------------------------------------------------------------------
    def _params(self, params: list[Any] | dict[str, Any]):
        from google.cloud import bigquery

        def param(name, value):
            kind = ("INT64" if isinstance(value, int) else "FLOAT64" if isinstance(value, float)
                    else "DATETIME" if hasattr(value, "isoformat") else "STRING")
            return bigquery.ScalarQueryParameter(name, kind, value)

        if isinstance(params, dict):
            return [param(k, v) for k, v in params.items()]
        return [param(None, v) for v in params]

    def _run(self, sql: str, params=None, client=None):
        from google.cloud import bigquery

        client = client or self.client()
        config = bigquery.QueryJobConfig(query_parameters=self._params(params) if params else [])
        return client.query(qualify_layers(sql, self.bronze_dataset, self.silver_dataset, self.dataset),
                            job_config=config).result()

    def _script(self, sql: str, params: dict[str, Any], client=None):
        """Run a multi-statement script with named parameters (``@name``). BigQuery binds
        query parameters in scripts; bqemulator (1.4) runs scripts without them ("Values
        were not provided for the following parameters"), so with an emulator endpoint
        (``api_endpoint``, the only case it is set) the same script is sent with the values
        written in as literals. Single statements keep bound parameters everywhere."""
        if self.api_endpoint:
            return self._run(inline_parameters(sql, params), client=client)
        return self._run(sql, params, client=client)

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        """Run SQL (``?`` positional parameters); ``bronze.``/``silver.`` name the layers (and
        dbt's ``staging.``, ``seeds.``, ``gold.``, ``marts.``, as on the other backends)."""
        return [tuple(row.values()) for row in self._run(sql, params)]

    def describe(self, table: str) -> list[tuple[str, str]]:
        schema, _, name = table.rpartition(".")
        dataset = f"{self.dataset}_{schema}" if schema in _LAYERS else schema
        return [(f.name, f.field_type) for f in self.client().get_table(f"{dataset}.{name}").schema]

    def preview_markdown(self, table: str, filename: str, limit: int = 5) -> str:
        rows = self._run(f"SELECT * FROM {table} WHERE filename = ? LIMIT {int(limit)}", [filename])
        names = [f.name for f in rows.schema]
        lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        lines += ["| " + " | ".join("" if v is None else str(v) for v in row.values()) + " |" for row in rows]
        return "\n".join(lines)

    def source_uri(self, schema: TripSchema, filename: str) -> str | None:
        """The month's object in the GCS lake (the lake's key layout), when a bucket is set."""
        if not self.bucket:
            return None
        return f"gs://{self.bucket}/{self.lake_prefix}{schema.colour}/{filename}"

    # -- bronze --------------------------------------------------------------------------
    @staticmethod
    def external_table(table_id: str, uri: str, schema: TripSchema):
        """An external table over the CSV object at ``uri``: every column STRING, header skipped."""
        from google.cloud import bigquery

        config = bigquery.ExternalConfig("CSV")
        config.source_uris = [uri]
        config.schema = [bigquery.SchemaField(c, "STRING") for c in schema.sql_names]
        config.max_bad_records = 0
        config.compression = "GZIP" if uri.endswith(".gz") else None
        config.options.skip_leading_rows = 1
        config.options.allow_quoted_newlines = True
        table = bigquery.Table(table_id)
        table.external_data_configuration = config
        return table

    def load_bronze(self, schema: TripSchema, partition: str, filename: str, path: str,
                    max_quarantine_fraction: float = 0.01) -> BronzeResult:
        from google.api_core.exceptions import BadRequest
        from google.cloud import bigquery

        client = self.client()
        self._ensure_tables(client, schema)
        table = f"{self.bronze_dataset}.{schema.table}"
        staging = (f"{client.project}.{self.bronze_dataset}._load_{schema.table}_"
                   f"{hashlib.md5(filename.encode()).hexdigest()[:8]}_{uuid.uuid4().hex[:8]}")
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.CSV, skip_leading_rows=1, field_delimiter=",",
            quote_character='"', allow_quoted_newlines=True, max_bad_records=0,
            schema=[bigquery.SchemaField(c, "STRING") for c in schema.sql_names],
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
        uri = path if str(path).startswith("gs://") else self.source_uri(schema, filename)
        try:
            try:
                if uri and self.bronze_via == "external":
                    client.create_table(self.external_table(staging, uri, schema))  # read in place
                    job = None
                elif uri:
                    job = client.load_table_from_uri(uri, staging, job_config=config)
                else:
                    with open(path, "rb") as handle:
                        job = client.load_table_from_file(handle, staging, job_config=config)
                if job is not None:
                    job.result()
                any_bad = " OR ".join(f"({untypable_sql(c.sql_name, c.type)})" for c in schema.columns)
                # An external table reads the object here: a broken file fails at this query.
                rows, bad = next(iter(self._run(
                    f"SELECT COUNT(*), COUNTIF({any_bad}) FROM `{staging}`", client=client)))
            except BadRequest as exc:
                raise BadInputError(
                    f"{filename} (partition {partition}) could not be loaded into bronze.{schema.table}: "
                    f"{exc.message}. The file is probably truncated or malformed: re-materialize its "
                    "raw and lake assets.", file=filename, partition=partition) from exc
            if rows == 0:
                raise BadInputError(
                    f"{filename} (partition {partition}) has a header but no trip rows; the previous "
                    "load of this month (if any) is kept. Check the source file.",
                    file=filename, partition=partition)
            if bad / rows > max_quarantine_fraction:
                raise BadInputError(
                    f"{filename} (partition {partition}): {bad} of {rows} rows ({bad / rows:.1%}) cannot "
                    f"be typed, more than the {max_quarantine_fraction:.1%} allowed "
                    "(TAXI_MAX_QUARANTINE_FRACTION). Nothing was changed for this month.",
                    file=filename, partition=partition)
            cols = ", ".join(schema.sql_names)
            self._script(f"""
                BEGIN TRANSACTION;
                DELETE FROM {table} WHERE filename = @filename;
                INSERT INTO {table} ({cols}, filename) SELECT {cols}, @filename FROM `{staging}`;
                COMMIT TRANSACTION;""", {"filename": filename}, client=client)
        finally:
            client.delete_table(staging, not_found_ok=True)
        return BronzeResult(filename, rows)

    # -- silver --------------------------------------------------------------------------
    def build_silver(self, schema: TripSchema, partition: str, filename: str,
                     max_quarantine_fraction: float = 0.01) -> SilverResult:
        client = self.client()
        self._ensure_tables(client, schema)
        b, s = self.bronze_dataset, self.silver_dataset
        bronze, silver, quarantine = f"{b}.{schema.table}", f"{s}.{schema.table}", f"{s}.{schema.table}_quarantine"
        start, end = month_bounds(partition)
        # Read-only first: the typing gate and the per-column reasons.
        counts = ", ".join(
            f"COUNTIF({untypable_sql(c.sql_name, c.type)}), "
            f"MIN(IF({untypable_sql(c.sql_name, c.type)}, {c.sql_name}, NULL))" for c in schema.columns)
        row = list(next(iter(self._run(
            f"SELECT COUNT(*), {counts} FROM {bronze} WHERE filename = @filename",
            {"filename": filename}, client=client))).values())
        total, by_column = row[0], [(c.sql_name, row[1 + 2 * i], repr(row[2 + 2 * i]))
                                     for i, c in enumerate(schema.columns) if row[1 + 2 * i]]
        if not total:
            raise BadInputError(
                f"{filename} (partition {partition}) is not in bronze.{schema.table}: materialize "
                f"bronze/{schema.table} for {partition} first.", file=filename, partition=partition)
        any_bad = " OR ".join(f"({untypable_sql(c.sql_name, c.type)})" for c in schema.columns)
        bad_rows = next(iter(self._run(f"SELECT COUNTIF({any_bad}) FROM {bronze} WHERE filename = @filename",
                                       {"filename": filename}, client=client)))[0]
        if bad_rows / total > max_quarantine_fraction:
            detail = "; ".join(f"column {c}: {n} rows, e.g. {ex}" for c, n, ex in by_column)
            raise BadInputError(
                f"{filename} (partition {partition}): {bad_rows} of {total} rows cannot be typed, more "
                f"than the {max_quarantine_fraction:.1%} allowed. {detail}. Nothing was changed.",
                file=filename, partition=partition, column=by_column[0][0] if by_column else None)
        result = self._script(silver_script(schema, bronze, silver, quarantine, f"_{uuid.uuid4().hex[:8]}"),
                              {"filename": filename, "month_start": start, "month_end": end}, client=client)
        rows_in, bad, distinct, rows_out, outside = next(iter(result)).values()
        if bad:
            get_dagster_logger().warning(f"{filename}: {bad} rows quarantined in {quarantine}")
        return SilverResult(
            filename=filename, rows_in=rows_in, rows_out=rows_out,
            duplicates_collapsed=(rows_in - bad) - distinct, duplicates_in_other_files=distinct - rows_out,
            rows_quarantined=bad, quarantine_reasons=by_column, pickups_outside_month=outside)
