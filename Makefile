# Every target works on a fresh clone: the venv is created and the project installed on demand.
# Installs come from requirements.lock (every package pinned, with hashes, for Python 3.11), so
# a clone tomorrow gets exactly what passed today; `make lock` refreshes the pins.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: lab demo test bench lint venv lock clean

venv: $(STAMP)

# The lock is installed as it is (--no-deps: nothing is resolved again), then the project
# itself, built with the locked setuptools; pip check proves the set is complete.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; v = "%d.%d" % sys.version_info[:2]; sys.exit(v != "3.11" and f"$(VENV) runs Python {v}, but $(LOCK) is for 3.11: rm -rf $(VENV) and run make with PYTHON=/path/to/python3.11")'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Newest releases inside pyproject.toml's ranges, for every OS on Python 3.11; environment.yml
# follows. Run `make test` afterwards: the pins are only worth what the suite proves.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra dask --group build --universal \
		--generate-hashes --upgrade --quiet --custom-compile-command "make lock" -o $(LOCK)
	$(BIN)/python tools/lockfile.py

# Opens the tour in whatever browser the desktop has (or prints the URL); nothing to download.
lab: $(STAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 --allow-root notebooks/01_live_market_data.ipynb

demo: $(STAMP)
	$(BIN)/python -m workbench demo

# Everything, the notebooks (nbclient) and the real-browser test included; screenshots and
# latency figures land in tests/artifacts/ (or $WB_ARTIFACTS).
# Two workers: most tests wait on sockets and threads, so two share the machine's cores well.
# `make test JOBS=0` runs in this process alone (for pdb).
JOBS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(JOBS) --durations=15

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check workbench tests benchmarks tools
	$(BIN)/ruff format --check workbench tests benchmarks tools
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info data/*.duckdb data/*.duckdb.wal tests/artifacts
