"""Asset checks that are not defined inside an asset (the GX suites live here)."""

from taxi_platform.checks.gx_checks import gx_checks

all_checks: list = [*gx_checks]
