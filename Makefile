# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo test dev lint lock clean gx-suites

$(BIN)/.installed: requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

install: $(BIN)/.installed  ## virtual environment with the pinned packages

demo: install  ## materialize every asset for three months from an offline sample source
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/taxi-platform demo

test: install  ## the whole suite: unit, integration, end-to-end
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The instance: PostgreSQL (dagster.yaml) when DAGSTER_PG_HOST is set, else SQLite in
# $(DAGSTER_HOME) (dagster.dev.yaml). Both: queued runs, run retries, pool limit 1 for warehouse writers.
dev: install  ## Dagster UI and daemon on http://127.0.0.1:3000
	@mkdir -p $(DAGSTER_HOME)
	@export DAGSTER_PG_PORT=$${DAGSTER_PG_PORT:-5432} DAGSTER_PG_DB=$${DAGSTER_PG_DB:-dagster} \
	  DAGSTER_PG_USER=$${DAGSTER_PG_USER:-postgres} DAGSTER_PG_PASSWORD=$${DAGSTER_PG_PASSWORD:-}; \
	if [ -n "$$DAGSTER_PG_HOST" ]; then \
	  cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml; \
	  echo "instance: PostgreSQL $$DAGSTER_PG_USER@$$DAGSTER_PG_HOST:$$DAGSTER_PG_PORT/$$DAGSTER_PG_DB (dagster.yaml)"; \
	else \
	  cp dagster.dev.yaml $(DAGSTER_HOME)/dagster.yaml; \
	  echo "instance: SQLite in $(DAGSTER_HOME) (dagster.dev.yaml; set DAGSTER_PG_HOST for PostgreSQL)"; \
	fi; \
	mkdir -p "$${TAXI_LANDING_DIR:-$${TAXI_DATA_DIR:-data}/landing}"; \
	exec $(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

gx-suites: install  ## (re)write the Great Expectations suites, checkpoints and data source in gx/
	$(BIN)/python -m taxi_platform.checks.gx_suites

lint: install
	$(BIN)/ruff check taxi_platform tests

lock:  ## re-resolve the pins from pyproject.toml into requirements.lock
	rm -rf /tmp/taxi-lock && $(PYTHON) -m venv /tmp/taxi-lock
	/tmp/taxi-lock/bin/pip install --quiet . '.[test]'
	/tmp/taxi-lock/bin/pip freeze --exclude taxi-platform > requirements.lock

clean:
	rm -rf data .dagster_home
