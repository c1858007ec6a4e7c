"""Asset checks that are not defined inside an asset (the GX suites live here)."""

all_checks: list = []
