"""Asset checks that are not defined inside an asset (the GX suites, the row reconciliation)."""

from taxi_platform.checks.gx_checks import build_gx_checks
from taxi_platform.checks.reconciliation import build_reconciliation_checks


def build_checks() -> list:
    """The checks of the code location, partitioned as the environment configures (TAXI_SOURCE)."""
    return [*build_gx_checks(), *build_reconciliation_checks()]


all_checks: list = build_checks()
