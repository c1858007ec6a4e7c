"""The test suite's fixtures live in tests/support, loaded here for every test: the platform's
environment, the mirror and PostgreSQL servers (fixtures.py), the GCS emulator (gcs.py), the
BigQuery emulator (bigquery.py) and the alert receivers (alerts.py). Tests never import one
another: what several share is there."""

pytest_plugins = ["tests.support.fixtures", "tests.support.gcs", "tests.support.bigquery",
                  "tests.support.alerts"]
