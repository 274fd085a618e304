# Every target works on a fresh clone: the venv is created and the project installed on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lab demo test bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Opens the tour in whatever browser the desktop has (or prints the URL); nothing to download.
lab: $(STAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 --allow-root notebooks/01_live_market_data.ipynb

demo: $(STAMP)
	$(BIN)/python -m workbench demo

# Everything, the notebooks (nbclient) and the real-browser test included; screenshots and
# latency figures land in tests/artifacts/ (or $WB_ARTIFACTS).
test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check workbench tests benchmarks
	$(BIN)/ruff format --check workbench tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info data/*.duckdb data/*.duckdb.wal tests/artifacts
