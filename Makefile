# Two commands do everything on a fresh machine:
#   make demo   set up, distill the fraud vertical on embedded data, score a batch
#   make test   set up, run the test suite
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.stillroom-installed
OUT     := demo-output
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db

.PHONY: setup sysdeps demo test test-order lint bench screenshots clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) constraints.txt core/pyproject.toml plugins/fraud/pyproject.toml plugins/medical/pyproject.toml plugins/molecules/pyproject.toml
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e "./core[server,compiled,spark]" -e ./plugins/fraud -e ./plugins/medical \
		-e './plugins/molecules[admet]' pytest pytest-xdist ruff selenium mypy import-linter
	touch $(STAMP)

setup: $(STAMP)

# System packages the team-server and browser tests use: PostgreSQL (a throwaway cluster per
# test module), Debian's chromium and its chromedriver (Selenium drives them; nothing downloads
# a browser). Installed with apt-get when missing and running as root (CI: fresh Debian 12);
# otherwise the tests fail naming the missing package (STILLROOM_SKIP_SYSTEM_TESTS=1 skips them).
SYSDEPS_BINS := /usr/bin/chromium /usr/bin/chromedriver
sysdeps:
	@missing=""; \
	for bin in $(SYSDEPS_BINS); do [ -x $$bin ] || missing="$$missing $$bin"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "sysdeps: missing$$missing; as root: apt-get install chromium chromium-driver postgresql"; exit 0; fi; \
	echo "sysdeps: installing chromium chromium-driver postgresql (missing:$$missing)"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver postgresql >/dev/null

demo: setup
	$(VENV)/bin/stillroom plugins
	$(VENV)/bin/stillroom distill fraud || [ $$? -eq 3 ]  # 3: the gate failed; the run is kept for review
	mkdir -p $(OUT)
	$(PY) -m stillroom_fraud.batch $(OUT)/transactions.parquet --rows 200000 --seed 7
	$(VENV)/bin/stillroom score models:/fraud-student/latest $(OUT)/transactions.parquet $(OUT)/scores.parquet --passthrough TRANSACTION_ID --no-progress
	$(PY) -m stillroom_fraud.batch $(OUT)/nightly-raw.csv --raw --days 1 --seed 8
	$(PY) -m stillroom_fraud.raw $(OUT)/nightly-raw.csv $(OUT)/nightly-inputs.parquet --keep TRANSACTION_ID
	$(VENV)/bin/stillroom score models:/fraud-student/latest $(OUT)/nightly-inputs.parquet $(OUT)/nightly-scores.parquet \
		--passthrough TRANSACTION_ID --passthrough history_complete --no-progress
	$(VENV)/bin/stillroom distill medical || [ $$? -eq 3 ]  # 3: the gate failed; the run is kept for review
	$(VENV)/bin/stillroom distill molecules || [ $$? -eq 3 ]  # 3: the gate failed; the run is kept for review
	$(PY) -m stillroom_molecules.library $(OUT)/library.csv
	$(VENV)/bin/stillroom score models:/molecules-student/latest $(OUT)/library.csv $(OUT)/library-scores.csv --passthrough name --no-progress
	@echo
	@echo "Audit the run and the registered model in the MLflow UI:"
	@echo "  $(VENV)/bin/stillroom ui     # then open http://127.0.0.1:5000"
	@echo "Promote the new version after review:"
	@echo "  $(VENV)/bin/stillroom promote fraud-student --version N --approver NAME --reason TEXT"

# A module runs whole on one worker (--dist loadscope: its fixtures are set up once), the slowest
# first (tests/conftest.py orders them by tests/module_seconds.json or this checkout's last run).
test: setup sysdeps
	$(VENV)/bin/pytest -n 2 --dist loadscope --no-loadscope-reorder -q --durations=30 tests

# After a whole `make test`, keep its seconds per module as the order a fresh clone starts from.
test-order:
	cp .pytest_cache/v/stillroom/module_seconds tests/module_seconds.json

# Style, the import layers of docs/architecture.md (import-linter) and the core's types (mypy).
lint: setup
	$(VENV)/bin/ruff check core plugins tests bench
	$(VENV)/bin/ruff format --check core plugins tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy core/stillroom

bench: setup
	$(PIP) install --quiet -c constraints.txt treelite tl2cgen  # only bench/scoring.py compares them
	$(PY) bench/fraud.py
	$(PY) bench/medical.py
	$(PY) bench/scoring.py
	$(PY) bench/molecules.py
	$(PY) bench/molecules_training.py

# The README's pictures of the MLflow UI: the browser test, writing its screenshots into docs/.
screenshots: setup sysdeps
	STILLROOM_SCREENSHOTS_DIR=$(CURDIR)/docs $(VENV)/bin/pytest -q tests/audit/test_audit.py -k test_ui_

clean:
	rm -rf $(VENV) $(OUT) mlflow.db mlruns mlartifacts
