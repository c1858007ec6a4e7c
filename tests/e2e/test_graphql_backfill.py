"""A partition backfill launched through Dagster's GraphQL API with the Python client
(dagster-graphql's DagsterGraphQLClient) against `dagster dev`, as a script or another
orchestrator would: the daemon runs it to completion and both months land in silver.

The client has no backfill method, so the `launchPartitionBackfill` mutation goes through the
client's own transport (``_execute``: the same endpoint, errors raised as
DagsterGraphQLClientError); run states are read with the client's ``get_run_status``.
"""

from __future__ import annotations

import duckdb
import pytest
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from taxi_platform.sample_source import write_month
from taxi_platform.schemas import GREEN
from tests.support.ui import start_dagster_dev, wait_for

ASSETS = [["raw", "green_tripdata"], ["lake", "green_tripdata"], ["bronze", "green_tripdata"],
          ["silver", "green_tripdata"]]
MONTHS = ["2019-01", "2019-02"]

LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { stack }
  }
}
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status isAssetBackfill partitionNames title
      assetSelection { path }
      runs(limit: 20) { runId status tags { key value } }
    }
    ... on Error { message }
  }
}
"""
DONE = {"COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "COMPLETED"}


@pytest.fixture
def dagster_dev(tmp_path, mirror):
    # February beside the real January head: generated in the published layout.
    write_month(GREEN, "2019-02", 300, mirror.root, seed=8)
    server = start_dagster_dev(tmp_path / "graphql", mirror.url)
    yield server
    server.stop()


@pytest.mark.slow
def test_a_backfill_launched_through_graphql_loads_both_months(dagster_dev):
    client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_dev.port, timeout=60)

    launched = client._execute(LAUNCH_BACKFILL, {"params": {
        "assetSelection": [{"path": path} for path in ASSETS],
        "partitionNames": MONTHS,
        "title": "green 2019-01..2019-02 (GraphQL test)",
        "tags": [{"key": "taxi/launched_by", "value": "graphql-test"}],
    }})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished():
        state = client._execute(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert state["__typename"] == "PartitionBackfill", state
        return state if state["status"] in DONE else None

    try:
        state = wait_for(finished, timeout=420, what=f"backfill {backfill_id}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{dagster_dev.log_tail()}") from None
    assert state["status"] == "COMPLETED_SUCCESS", (state, dagster_dev.log_tail())
    assert state["isAssetBackfill"] and sorted(state["partitionNames"]) == MONTHS
    assert sorted(a["path"] for a in state["assetSelection"]) == sorted(ASSETS)

    # Single-run backfill policy: both months in one run, tagged as a backfill run.
    assert len(state["runs"]) == 1, state["runs"]
    run = state["runs"][0]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/backfill"] == backfill_id
    assert tags["taxi/launched_by"] == "graphql-test"
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        "2019-01", "2019-02")
    assert client.get_run_status(run["runId"]) == DagsterRunStatus.SUCCESS

    with duckdb.connect(str(dagster_dev.data_dir / "warehouse.duckdb"), read_only=True) as conn:
        per_file = dict(conn.execute(
            "SELECT filename, count(*) FROM silver.green_tripdata GROUP BY 1").fetchall())
    assert set(per_file) == {GREEN.filename(m) for m in MONTHS}, per_file
    assert all(rows > 0 for rows in per_file.values()), per_file
