# Churn prediction platform. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.churn-installed
# A data set other than the default: DATASET=examples/purchase_log/dataset.yaml. Its workspace is
# data/<name>/ (warehouse, registry, models, embedded Redis) and reports/<name>/; build, serve,
# dashboards' data, stop and the db-* targets all follow it.
DATASET ?=
DATA_DIR := $(if $(DATASET),$(shell $(BIN)/python -m churn.dataset data-dir '$(DATASET)' 2>/dev/null || echo data),data)
# Set REDIS_URL to use an existing Redis; empty means the embedded redis-server under data/.
REDIS_URL ?=
# Extra arguments for ploomber build / pytest, e.g. ARGS="--env--n_users 300" or ARGS="-k redis".
ARGS ?=
BACKUP ?=
# Ports of `make serve` (the API, PORT=8080) and `make dashboards` (Voila); `make status` asks the API on PORT.
PORT ?= 8000
DASHBOARD_PORT ?= 8866
# make phase PHASE=check-features [IN_PLACE=1]; make db-connect [WRITE=1]
PHASE ?=
IN_PLACE ?=
WRITE ?=
# The `churn` command pointed at the data set's workspace (DATASET) and at REDIS_URL, if given.
CHURN_SET := $(if $(DATASET),$(shell $(BIN)/python -m churn.dataset sets '$(DATASET)' 2>/dev/null),) \
	$(if $(REDIS_URL),--set 'redis_url=$(REDIS_URL)',)
CHURN := $(strip $(BIN)/churn $(CHURN_SET))
REDIS_ENV := $(if $(REDIS_URL),--env--redis_url '$(REDIS_URL)',)

.PHONY: help setup build test test-fast lint format lab bench serve redis-start stop clean db-backup db-restore db-clean dashboards browser \
	plot status logs db-connect redis-cli version phase

help: ## list the targets and what they do
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv and install the pinned dependencies (fast when nothing changed)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned stack into $(VENV) (about 3 minutes on a fresh machine)..."
	$(BIN)/python -m pip install -qq --disable-pip-version-check -c requirements.lock -e '.[notebook,dev]'
	@touch $(STAMP)

redis-start: setup ## start (or reuse) the embedded redis-server, unless REDIS_URL is set
	@if [ -z "$(REDIS_URL)" ]; then $(BIN)/python -m churn.store.redis_server start --data-dir $(DATA_DIR); \
	else echo "using REDIS_URL=$(REDIS_URL)"; fi

build: setup redis-start ## run the whole pipeline (parameters checked first, then ploomber build); DATASET=file.yaml builds that data set in its own workspace
	@if [ -n "$(DATASET)" ]; then \
		gen="$$(dirname '$(DATASET)')/generate.py"; if [ -f "$$gen" ]; then $(BIN)/python "$$gen" || exit 2; fi; \
		args=$$($(BIN)/python -m churn.dataset args '$(DATASET)') || exit 2; \
		echo "$(BIN)/churn build $$args $(ARGS)"; $(BIN)/churn build $(REDIS_ENV) $$args $(ARGS); \
	else $(BIN)/churn build $(REDIS_ENV) $(ARGS); fi

# pytest-xdist workers for `make test`: one per core, at most 4 (TEST_JOBS=1: a serial run)
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

test: setup browser ## run the whole test suite (unit, data, model, serving, pipeline + nbval, dashboards in Chromium) on TEST_JOBS workers
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup $(ARGS)

test-fast: setup ## the unit tests only (no default-size simulations, builds or browser) on TEST_JOBS workers: under a minute
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup tests/unit -m "not slow" $(ARGS)

lint: setup ## ruff (lint + format check of files not listed as legacy) and mypy (strict on the core packages)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## apply ruff's safe fixes and format every file not listed as legacy in pyproject.toml
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

browser: ## install Debian's headless Chromium for the dashboard tests, if missing (needs root)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium missing and not root: dashboard browser tests will be skipped"; }

lab: setup ## JupyterLab: phase notebooks open as notebooks; their injected parameters use a scratch copy (data/scratch/lab)
	$(BIN)/churn scratch --name lab --env-file env.lab.yaml
	PLOOMBER_ENV_FILENAME=env.lab.yaml CHURN_DATA_DIR=$(abspath $(DATA_DIR)) JUPYTER_CONFIG_PATH=$(CURDIR)/.jupyter \
		$(BIN)/jupyter lab --ServerApp.contents_manager_class=jupytext.TextFileContentsManager \
		$(if $(filter 0,$(shell id -u)),--allow-root,)

bench: setup redis-start ## run the benchmarks (pipeline steps, 100k users, the API under wrk) -> reports/benchmarks.md
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } || true
	@test -f $(DATA_DIR)/churn.snapshot.duckdb || $(MAKE) build
	$(BIN)/python -m benchmarks.run --out reports/benchmarks.md --serving-data-dir $(DATA_DIR) $(ARGS)

serve: setup redis-start ## the REST API on http://127.0.0.1:PORT (default 8000), via python -m churn.serving; run `make build` first
	CHURN_DATA_DIR=$(DATA_DIR) REDIS_URL='$(REDIS_URL)' CHURN_PORT=$(PORT) $(BIN)/python -m churn.serving

dashboards: setup ## serve the monitoring and A/B dashboards with Voila on http://127.0.0.1:$(DASHBOARD_PORT) (DASHBOARD_PORT=8866); DATASET=... reads that workspace
	@echo "monitoring: http://127.0.0.1:$(DASHBOARD_PORT)/voila/render/monitoring.ipynb"
	@echo "A/B tests:  http://127.0.0.1:$(DASHBOARD_PORT)/voila/render/ab_testing.ipynb"
	CHURN_DATA_DIR=$(abspath $(DATA_DIR)) JUPYTER_CONFIG_PATH=$(CURDIR)/.jupyter $(BIN)/voila notebooks/dashboards --no-browser --port $(DASHBOARD_PORT) --Voila.ip=127.0.0.1 --KernelManager.transport=ipc \
		--MappingKernelManager.cull_idle_timeout=300 --MappingKernelManager.cull_interval=60 \
		--MappingKernelManager.cull_connected=True

stop: ## stop the embedded redis-server
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m churn.store.redis_server stop --data-dir $(DATA_DIR); fi

clean: stop ## remove generated data and reports (keeps data/backups)
	find $(DATA_DIR) -mindepth 1 -maxdepth 1 ! -name .gitkeep ! -name backups -exec rm -rf {} +
	find reports -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf .pytest_cache

db-backup: setup ## EXPORT DATABASE + data/models into data/backups/<timestamp>, with a sha256 manifest
	$(BIN)/python -m churn.store.warehouse backup --warehouse $(DATA_DIR)/churn.duckdb --models-dir $(DATA_DIR)/models

db-restore: setup ## verify, then IMPORT DATABASE + data/models from BACKUP=data/backups/<timestamp> (default: the latest)
	$(BIN)/python -m churn.store.warehouse restore --warehouse $(DATA_DIR)/churn.duckdb --models-dir $(DATA_DIR)/models $(if $(BACKUP),--backup $(BACKUP),)

db-clean: setup ## delete the warehouse (and its reader snapshot); backups are kept
	$(BIN)/python -m churn.store.warehouse clean --warehouse $(DATA_DIR)/churn.duckdb

plot: setup ## draw the pipeline DAG with each task's last status and duration -> reports/pipeline.svg/.png (offline)
	$(CHURN) plot

status: setup ## what is built and when, what is outdated, the warehouse, the production model, Redis, the API on PORT
	$(CHURN) status --api http://127.0.0.1:$(PORT)

logs: setup ## the newest build/phase log (data/logs/) and the embedded Redis log
	$(CHURN) logs

phase: setup ## run one phase: PHASE=check-features, on a scratch copy of the build (IN_PLACE=1: for real)
	@test -n "$(PHASE)" || { echo "usage: make phase PHASE=<task name> [IN_PLACE=1]"; exit 2; }
	$(CHURN) phase $(PHASE) $(if $(IN_PLACE),--in-place,)

db-connect: setup ## a DuckDB SQL shell on the warehouse, read-only (WRITE=1: read-write, takes the write lock)
	$(CHURN) db $(if $(WRITE),--write,)

redis-cli: setup ## redis-cli on the online store (REDIS_URL, else the embedded server)
	$(CHURN) redis-cli

version: setup ## versions: churn and its commit, Python, the main packages
	$(BIN)/churn version

# -- the daily cycle (see README "The daily cycle") ---------------------------------------------
.PHONY: cycle backfill
# AS_OF=YYYY-MM-DD (default: the day after the last run), FORCE=1 re-runs a day that already ran
cycle: setup redis-start ## run one day incrementally: ploomber build --env--as_of AS_OF (default: the day after the last run); FORCE=1, DATASET=...
	@args=""; if [ -n "$(DATASET)" ]; then args=$$($(BIN)/python -m churn.dataset args '$(DATASET)') || exit 2; fi; \
	$(BIN)/churn cycle $(if $(AS_OF),--as-of '$(AS_OF)',) $(if $(filter 1,$(FORCE)),--force,) $(REDIS_ENV) $$args $(ARGS)
backfill: setup redis-start ## run the daily cycles FROM=YYYY-MM-DD TO=YYYY-MM-DD in order, stopping at the first failure
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD"; exit 2; }
	@args=""; if [ -n "$(DATASET)" ]; then args=$$($(BIN)/python -m churn.dataset args '$(DATASET)') || exit 2; fi; \
	$(BIN)/churn backfill --from '$(FROM)' --to '$(TO)' $(REDIS_ENV) $$args $(ARGS)

# -- runs: scheduling (see README "Runs") ------------------------------------------------------
.PHONY: schedule
SCHEDULE ?= 0 6 * * *
schedule: ## print a crontab line that runs the daily cycle on this machine (add it with `crontab -e`)
	@echo "$(SCHEDULE) cd $(CURDIR) && $(shell command -v $(MAKE)) cycle$(if $(DATASET), DATASET='$(DATASET)',)$(if $(REDIS_URL), REDIS_URL='$(REDIS_URL)',) >> $(CURDIR)/$(DATA_DIR)/cron.log 2>&1"

# -- scheduling with Apache Airflow (see README "Scheduling") ------------------------------------
.PHONY: airflow-dag
AIRFLOW_DAG ?=
airflow-dag: setup ## write the Airflow DAG (one task per phase) generated from pipeline.yaml to data/airflow/dags/ (AIRFLOW_DAG=file.py)
	$(CHURN) airflow-dag $(if $(AIRFLOW_DAG),--out '$(AIRFLOW_DAG)',)
