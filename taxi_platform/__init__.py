"""taxi_platform: an asset-based Dagster platform for the NYC TLC yellow and green taxi trips."""

import warnings

# The platform uses Dagster's beta and preview features on purpose (partitioned asset checks,
# single-run backfills, partition mappings that allow missing months): their "may change"
# warnings are for us, who pin the versions (requirements.lock), not for every
# `dagster asset materialize` a user runs. Filtered before any asset module is imported.
warnings.filterwarnings("ignore", message=r".*(is currently in beta|is currently in preview)")
