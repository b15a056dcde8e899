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

.PHONY: setup demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) constraints.txt core/pyproject.toml plugins/fraud/pyproject.toml plugins/molecules/pyproject.toml
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e ./core -e ./plugins/fraud -e './plugins/molecules[admet]' pytest pytest-xdist ruff
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/stillroom plugins
	$(VENV)/bin/stillroom distill fraud
	mkdir -p $(OUT)
	$(PY) -m stillroom_fraud.batch $(OUT)/transactions.parquet --rows 200000 --seed 7
	$(VENV)/bin/stillroom score models:/fraud-student/latest $(OUT)/transactions.parquet $(OUT)/scores.parquet --passthrough TRANSACTION_ID --no-progress
	$(VENV)/bin/stillroom distill molecules
	$(PY) -m stillroom_molecules.library $(OUT)/library.csv
	$(VENV)/bin/stillroom score models:/molecules-student/latest $(OUT)/library.csv $(OUT)/library-scores.csv --passthrough name --no-progress
	@echo
	@echo "Audit the run and the registered model in the MLflow UI:"
	@echo "  $(VENV)/bin/stillroom ui     # then open http://127.0.0.1:5000"
	@echo "Promote the new version after review:"
	@echo "  $(VENV)/bin/stillroom promote fraud-student --version N --approver NAME --reason TEXT"

test: setup
	$(VENV)/bin/pytest -n 2 -q tests

lint: setup
	$(VENV)/bin/ruff check core plugins tests bench
	$(VENV)/bin/ruff format --check core plugins tests bench

bench: setup
	$(PY) bench/fraud.py
	$(PY) bench/molecules.py

clean:
	rm -rf $(VENV) $(OUT) mlflow.db mlruns mlartifacts
