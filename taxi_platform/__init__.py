"""taxi_platform: an asset-based Dagster platform for the NYC TLC yellow and green taxi trips."""
