"""Asset checks that are not defined inside an asset (the GX suites live here)."""

from taxi_platform.checks.gx_checks import build_gx_checks


def build_checks() -> list:
    """The checks of the code location, partitioned as the environment configures (TAXI_SOURCE)."""
    return build_gx_checks()


all_checks: list = build_checks()
