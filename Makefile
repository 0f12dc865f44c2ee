# Two commands: `make demo` (install + evaluate the demo model) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format bench ui mutate clean

# The first install takes a minute or two: say what is happening, and let pip list each package
# it collects (only the pip upgrade stays quiet). Nothing is printed once the stamp is fresh.
DIRECT_DEPS = import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print(len(p["dependencies"]) + len(p["optional-dependencies"]["dev"]))
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "==> creating the virtualenv $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> upgrading pip in $(VENV)"
	@$(BIN)/pip install --quiet --upgrade pip
	@echo "==> installing eval-pipelines (editable) and its $$($(BIN)/python -c '$(DIRECT_DEPS)') direct dependencies with theirs: about a minute the first time"
	$(BIN)/pip install -e '.[dev]'
	@touch $(STAMP)
	@echo "==> installed: $(BIN)/eval-pipelines"

install: $(STAMP)

demo: install
	@echo "==> eval-pipelines demo: builds the demo warehouse if needed, evaluates its last four weeks with a trend dashboard per model"
	GX_ANALYTICS_ENABLED=false $(BIN)/eval-pipelines demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	GX_ANALYTICS_ENABLED=false $(BIN)/python -m pytest -q --durations=15

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The Dagster UI (http://127.0.0.1:3000) and the MLflow UI (http://127.0.0.1:5000) on the local
# stores `make demo` fills. Ctrl-C stops both. The demo's calendar comes from its data: specs
# without start_week (the demo's) begin at the week of their first prediction
# (EVAL_DEFAULT_START_WEEK=earliest), and the registry sensor evaluates the demo's candidate on
# the demo's last week (EVAL_REGISTRY_WEEK, read from data/warehouse.duckdb; unset in production).
DAGSTER_HOME_DIR := $(abspath .dagster_home)
ui: install
	@mkdir -p $(DAGSTER_HOME_DIR) out/mlflow/artifacts
	@cp deploy/dagster.local.yaml $(DAGSTER_HOME_DIR)/dagster.yaml
	@week=$$($(BIN)/python -c 'from eval_pipelines.demo import ui_registry_week as w; print(w("data/warehouse.duckdb"))') \
		|| exit 1; \
	trap 'kill 0' INT TERM EXIT; \
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath out/mlflow/mlflow.db) \
		--default-artifact-root $(abspath out/mlflow/artifacts) --host 127.0.0.1 --port 5000 & \
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) GX_ANALYTICS_ENABLED=false \
		EVAL_DEFAULT_START_WEEK=earliest EVAL_REGISTRY_WEEK=$$week \
		$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# Mutation testing of the statistical core (docs/testing.md); not part of CI: about 25 minutes.
mutate: install
	GX_ANALYTICS_ENABLED=false $(BIN)/python tests/support/mutation.py

bench: install
	$(BIN)/python benchmarks/bench_evaluation.py

clean:
	rm -rf out data .dagster_home .pytest_cache .ruff_cache
