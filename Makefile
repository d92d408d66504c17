# The two commands the README gives: `make demo` and `make test`. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test setup fashion-mnist chromium lint clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . || $(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Real FashionMNIST from Debian (MIT licence): the offline default data of `make demo`.
fashion-mnist:
	@if [ ! -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
		echo "installing Debian package dataset-fashion-mnist"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi

# Debian's chromium: the browser tests open the sweep report, the MLflow UI and optuna-dashboard headless.
chromium:
	@if ! command -v chromium >/dev/null; then \
		echo "installing Debian package chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# The main job: local stack, a small real sweep through `ray job submit`, the HTML report, where to look.
# `make demo KEEP=1` leaves the stack running (stop: cluster/stop_stack.sh --state-dir .stack-demo).
KEEP ?= 0
demo: setup fashion-mnist
	KEEP=$(KEEP) PYTHON=$(PY) cluster/demo.sh

test: setup fashion-mnist chromium lint
	$(PY) -m pytest -q

# Lint and format check (part of make test): every Python tree of the repository.
LINTED = radae sweeps tests benchmarks dashboards cluster
lint: setup
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

clean:
	rm -rf $(VENV) runs .pytest_cache
