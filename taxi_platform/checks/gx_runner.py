"""Run a suite's checkpoint on one month's batch and turn the GX result into an asset check result.

The batch is the rows of the month's file (``WHERE filename = '<colour>_tripdata_YYYY-MM.csv.gz'``
on the table, in the warehouse: :func:`validate_file`; a landed load for the bronze gate:
:func:`validate_load`), the rows of a partition's two files
(gold: :func:`validate_partition`) or a whole unpartitioned table (the mart: :func:`validate_table`).
GX computes every metric in SQL, so nothing is pulled into pandas and a 7-million-row month
validates in seconds. Only the handful of unexpected values shown in the metadata leave the
warehouse (for a SQL rule, the rows its query returned).

Two passes, the second only when something failed: the checkpoint asks for unexpected counts
only (no examples: a passing expectation would otherwise cost one more scan of the batch to find
nothing), then :func:`_with_examples` validates the failed column expectations again on the same
batch for :data:`EXAMPLES` unexpected values each, shown in the check's description and metadata.
The stored validation result (Data Docs) has the counts and shares of the first pass.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from taxi_platform.checks.gx_context import DATA_DOCS_SITE, served_url
from taxi_platform.checks.gx_suites import BY_FILE, BY_LOAD, EXAMPLES, WHOLE_TABLE, Suite
from taxi_platform.partitions import month_bounds

log = logging.getLogger(__name__)


@dataclass
class FailedExpectation:
    expectation: str  # GX type, e.g. expect_column_values_to_be_between
    column: str | None
    severity: str  # critical (-> ERROR) or warning (-> WARN: a `mostly` rule)
    description: str
    observed_value: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    unexpected_values: list = field(default_factory=list)
    mostly: float | None = None
    error: str | None = None  # the expectation could not be evaluated

    @property
    def message(self) -> str:
        where = f" on {self.column}" if self.column else ""
        if self.error:
            return f"{self.expectation}{where} could not be evaluated: {self.error}"
        parts = [f"{self.expectation}{where} failed ({self.description.rstrip('.')})"]
        if self.unexpected_count is not None:
            share = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            need = f", allowed at most {(1 - self.mostly) * 100:.1f}%" if self.mostly else ""
            parts.append(f"{self.unexpected_count:,} unexpected rows{share}{need}")
        if self.unexpected_values:
            parts.append("e.g. " + ", ".join(repr(v) for v in self.unexpected_values))
        if self.observed_value is not None and self.unexpected_count is None:
            parts.append(f"observed {_short(self.observed_value)}")
        return parts[0] + (": " + "; ".join(parts[1:]) if parts[1:] else "")

    def as_json(self) -> dict:
        return {k: v for k, v in {
            "expectation": self.expectation, "column": self.column, "severity": self.severity,
            "observed_value": _jsonable(self.observed_value), "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent, "unexpected_values": self.unexpected_values,
            "mostly": self.mostly, "error": self.error, "message": self.message,
        }.items() if v is not None and v != []}


@dataclass
class SuiteOutcome:
    suite: str
    month: str
    filename: str
    evaluated: int
    successful: int
    failures: list[FailedExpectation]
    seconds: float
    data_docs_url: str | None = None
    row_count: int | None = None

    @property
    def success(self) -> bool:
        return not self.failures

    @property
    def severity(self) -> AssetCheckSeverity:
        critical = any(f.severity == "critical" for f in self.failures)
        return AssetCheckSeverity.ERROR if critical else AssetCheckSeverity.WARN


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):  # PostgreSQL's NUMERIC, e.g. sum() of integers
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _short(value: Any, limit: int = 300) -> str:
    text = repr(_jsonable(value))
    return text if len(text) <= limit else text[:limit] + "…"


def _failure(result, examples: list | None = None) -> FailedExpectation:
    """``examples``: the unexpected values found by the second pass (:func:`_with_examples`)."""
    config = result.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column") or (
        f"{kwargs['column_A']} vs {kwargs['column_B']}" if "column_A" in kwargs else None) or (
        ", ".join(kwargs["column_list"]) if kwargs.get("column_list") and "compound" in config.type else None)
    severity = getattr(config, "severity", None)
    severity = getattr(severity, "value", severity) or "critical"
    info = result.exception_info or {}
    error = None
    if info.get("raised_exception"):
        error = str(info.get("exception_message") or "error").splitlines()[0]
    else:  # metric errors are keyed by metric id
        for value in info.values():
            if isinstance(value, dict) and value.get("raised_exception"):
                error = str(value.get("exception_message") or "error").splitlines()[0]
                break
    r = result.result or {}
    observed = r.get("observed_value")
    details = r.get("details") or {}
    if config.type == "expect_table_columns_to_match_ordered_list" and details.get("mismatched"):
        observed = {"columns": observed, "mismatched": details["mismatched"]}
    percent = r.get("unexpected_percent")
    unexpected_count = r.get("unexpected_count")
    examples = examples or r.get("partial_unexpected_list")
    if config.type == "unexpected_rows_expectation":  # a SQL rule: the rows its query returned
        unexpected_count = observed if isinstance(observed, int) else None
        examples = details.get("unexpected_rows")
    return FailedExpectation(
        expectation=config.type, column=column,
        severity="critical" if error else severity,
        description=getattr(config, "description", None) or config.meta.get("description", "") or "",
        observed_value=_jsonable(observed),
        unexpected_count=unexpected_count,
        unexpected_percent=round(float(percent), 4) if percent is not None else None,
        unexpected_values=_jsonable(list(examples or [])[:EXAMPLES]),
        mostly=kwargs.get("mostly"), error=error)


def validate_file(context, suite: Suite, month: str, filename: str, run_name: str | None = None) -> SuiteOutcome:
    """Run ``suite``'s checkpoint on the rows of ``month``'s file ``filename`` (in the warehouse)."""
    return _run_checkpoint(context, suite, month, filename, {"filename": filename}, run_name,
                           missing=f"{suite.asset_name} has no rows of {filename}")


def validate_load(context, suite: Suite, month: str, filename: str, load_id: str,
                  run_name: str | None = None) -> SuiteOutcome:
    """Run ``suite``'s checkpoint on one landed load of ``filename`` (the bronze gate)."""
    return _run_checkpoint(context, suite, month, filename, {"filename": filename, "load_id": load_id}, run_name,
                           missing=f"{suite.asset_name} has no rows of {filename}")


def validate_partition(context, suite: Suite, month: str, files: list[str],
                       run_name: str | None = None) -> SuiteOutcome:
    """Run ``suite``'s checkpoint on the rows of ``month``'s ``files``, every colour's (a
    partition of gold/fct_trips: ``partition_month = 'YYYY-MM'`` on the query asset)."""
    return _run_checkpoint(context, suite, month, ", ".join(files), {"partition_month": month}, run_name,
                           missing=f"{suite.asset_name} has no rows of {' or '.join(files)}")


def validate_table(context, suite: Suite, run_name: str | None = None) -> SuiteOutcome:
    """Run ``suite``'s checkpoint on its whole table (an unpartitioned asset, e.g. a mart)."""
    return _run_checkpoint(context, suite, None, suite.asset_name, None, run_name,
                           missing=f"{suite.asset_name} cannot be read")


def _run_checkpoint(context, suite: Suite, month: str | None, batch_label: str,
                    batch_parameters: dict | None, run_name: str | None, missing: str) -> SuiteOutcome:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.exceptions.exceptions import NoAvailableBatchesError

    parameters = {}
    if month is not None:
        start, end = month_bounds(month)
        parameters = {"month_start": start.strftime("%Y-%m-%d %H:%M:%S"),
                      "month_end": end.strftime("%Y-%m-%d %H:%M:%S")}
    checkpoint = context.checkpoints.get(suite.name)
    began = time.monotonic()
    try:
        result = checkpoint.run(
            batch_parameters=batch_parameters, expectation_parameters=parameters or None,
            run_id=RunIdentifier(run_name=f"{run_name or 'manual'}-{month or 'all'}"))
    except NoAvailableBatchesError:  # (a whole table that cannot be read)
        return _missing(suite, month, batch_label, missing, began)
    (identifier, validation), = result.run_results.items()
    row_count = next((r.result.get("observed_value") for r in validation.results
                      if r.expectation_config.type == "expect_table_row_count_to_be_between"), None)
    if batch_parameters and row_count == 0:  # a named batch with no rows (gx_context: batches named)
        return _missing(suite, month, batch_label, missing, began)
    failed = [r for r in validation.results if not r.success]
    examples = _with_examples(checkpoint, batch_parameters, parameters, failed)
    failures = [_failure(r, examples.get(_key(r))) for r in failed]
    seconds = time.monotonic() - began
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_names=[DATA_DOCS_SITE])
    stats = validation.statistics
    return SuiteOutcome(
        suite=suite.name, month=month or "", filename=batch_label,
        evaluated=int(stats.get("evaluated_expectations", len(validation.results))),
        successful=int(stats.get("successful_expectations", 0)),
        failures=failures, seconds=round(seconds, 3),
        data_docs_url=served_url(urls[0]["site_url"]) if urls else None, row_count=row_count)


def _missing(suite: Suite, month: str | None, batch_label: str, missing: str, began: float) -> SuiteOutcome:
    what = f" for {month}" if month else ""
    return SuiteOutcome(suite.name, month or "", batch_label, 1, 0, [FailedExpectation(
        "batch", None, "critical", "", error=f"{missing}: "
        f"materialize {suite.schema_name}/{suite.table_name}{what} first")],
        time.monotonic() - began)


def _key(result) -> str:
    """An expectation of a suite by its content (the second pass validates copies, without ids)."""
    config = result.expectation_config
    return f"{config.type}:{json.dumps(config.kwargs, sort_keys=True, default=str)}"


def _wants_examples(result) -> bool:
    """A failed column (map) expectation whose first pass counted unexpected rows but, with
    no examples asked for, returned none of them."""
    r = result.result or {}
    return (bool(r.get("unexpected_count")) and not r.get("partial_unexpected_list")
            and not (result.exception_info or {}).get("raised_exception"))


def _with_examples(checkpoint, batch_parameters: dict | None, parameters: dict,
                   failed: list) -> dict[str, list]:
    """The second pass: up to EXAMPLES unexpected values of each failed column expectation,
    by :func:`_key`, from the failed expectations alone validated again on the same batch
    (nothing runs when every expectation passed). Examples are a help, not the verdict: if
    fetching them fails, the failures are reported without."""
    wanted = [r for r in failed if _wants_examples(r)]
    if not wanted:
        return {}
    import great_expectations as gx

    try:
        (definition,) = checkpoint.validation_definitions
        batch = definition.batch_definition.get_batch(batch_parameters=batch_parameters)
        suite = gx.ExpectationSuite(name=f"{definition.suite.name}_examples", expectations=[
            copy.copy(r.expectation_config.to_domain_obj()) for r in wanted])  # copies: no suite's
        again = batch.validate(suite, result_format={"result_format": "SUMMARY",
                                                     "partial_unexpected_count": EXAMPLES},
                               expectation_parameters=parameters or None)
    except Exception as error:  # noqa: BLE001  (the first pass's verdict stands)
        log.warning("could not fetch the unexpected values of %s: %s", checkpoint.name, error)
        return {}
    return {_key(r): list((r.result or {}).get("partial_unexpected_list") or [])[:EXAMPLES]
            for r in again.results}


def _failures_markdown(outcomes: list[SuiteOutcome]) -> str:
    lines = ["| month | expectation | column | severity | observed | unexpected | % | examples |",
             "|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        for f in o.failures:
            cells = [o.month, f.expectation, f.column or "", f.severity,
                     _short(f.observed_value, 80) if f.observed_value is not None else (f.error or ""),
                     "" if f.unexpected_count is None else f"{f.unexpected_count:,}",
                     "" if f.unexpected_percent is None else f"{f.unexpected_percent:.2f}",
                     ", ".join(repr(v) for v in f.unexpected_values)]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def check_result(suite: Suite, outcomes: list[SuiteOutcome], docs_index: str | None = None) -> AssetCheckResult:
    """One asset check result for the months of a run: passed when every expectation held in
    every month; ERROR when an exact expectation failed, WARN when only `mostly` rules did."""
    failed = [o for o in outcomes if not o.success]
    severity = (AssetCheckSeverity.WARN if failed and all(o.severity == AssetCheckSeverity.WARN for o in failed)
                else AssetCheckSeverity.ERROR)
    all_failures = [f for o in failed for f in o.failures]
    metadata: dict[str, Any] = {
        "suite": suite.name,
        "table": suite.asset_name,
        "evaluated_expectations": sum(o.evaluated for o in outcomes),
        "successful_expectations": sum(o.successful for o in outcomes),
        "failed_expectations": MetadataValue.json(
            [{"month": o.month, **f.as_json()} for o in outcomes for f in o.failures]),
        "validation_seconds": round(sum(o.seconds for o in outcomes), 3),
    }
    if all_failures:
        metadata["failures"] = MetadataValue.md(_failures_markdown(failed))
    if len(outcomes) == 1:
        (o,) = outcomes
        if suite.batch != WHOLE_TABLE:
            metadata["file" if suite.batch in (BY_FILE, BY_LOAD) else "files"] = o.filename
        if o.row_count is not None:
            metadata["rows_validated"] = o.row_count
        if o.data_docs_url:
            metadata["data_docs"] = MetadataValue.url(o.data_docs_url)
    else:
        metadata["months"] = MetadataValue.md("\n".join(
            ["| month | file | passed | failed expectations | seconds | data docs |", "|---|---|---|---|---|---|"]
            + [f"| {o.month} | {o.filename} | {o.success} | {len(o.failures)} | {o.seconds} | "
               f"{f'[validation]({o.data_docs_url})' if o.data_docs_url else ''} |" for o in outcomes]))
    if docs_index:
        metadata["data_docs_index"] = MetadataValue.url(docs_index)
    if failed:
        head = (f"{suite.name}: {len(all_failures)} expectation(s) failed"
                + (f" in {', '.join(o.month for o in failed)}" if len(outcomes) > 1 else f" on {failed[0].filename}"))
        description = head + ". " + " | ".join(
            (f"[{o.month}] " if len(outcomes) > 1 else "") + f.message for o in failed for f in o.failures)
    else:
        description = (f"{suite.name}: all {sum(o.evaluated for o in outcomes)} expectations passed on "
                       + ", ".join(o.filename for o in outcomes))
    return AssetCheckResult(passed=not failed, severity=severity, description=description[:2000],
                            metadata=metadata)
