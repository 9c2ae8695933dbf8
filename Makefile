# `make repro` and `make test` work on a fresh clone: both create .venv from the pinned
# requirements first when it is missing or older than requirements.txt / pyproject.toml.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
# dvc.yaml's commands say `python`: the venv's must come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# make compare BASE=main FAIL_IF='test_mae>+5%' METRICS=test_mae,test_r2
BASE ?= main
FAIL_IF ?=
METRICS ?= test_mae,test_rmse,test_r2
# make sweep GRID='train.lr=0.001,0.01,0.1 train.epochs=100,200' SORT=test_mae
GRID ?= train.lr=0.001,0.01,0.1
SORT ?= test_mae
# Handed to the commands through the environment, so that no quote in them can break a recipe.
export BASE FAIL_IF METRICS GRID SORT

.PHONY: repro test test-fast test-stress lint bench bench-scale bench-resume bench-distributed bench-precision gpu-check compare sweep push pull clean

# The page `dvc plots show` and `dvc plots diff` fill (.dvc/config: plots.html_template): Vega
# inside it, so that the interactive charts draw offline (docs/experiments-and-ci.md).
PLOTS_PAGE := .dvc/plots/page.html

repro: $(STAMP) $(PLOTS_PAGE)
	dvc repro

# The tests on every core (pytest-xdist), then the 15 slowest.
PYTEST := pytest -n auto --durations=15

test: $(STAMP) $(PLOTS_PAGE) lint
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# The whole suite three times in a row while a busy loop on every core competes with it: a
# test that depends on the machine's speed shows here. The load stops with the recipe.
test-stress: $(STAMP)
	@pids=""; for core in $$(seq "$$(nproc)"); do \
		python -c 'while True: pass' & pids="$$pids $$!"; done; \
	trap 'kill $$pids' EXIT INT TERM; \
	for round in 1 2 3; do echo "== stress round $$round of 3"; $(PYTEST) -q || exit 1; done

lint: $(STAMP)
	ruff check .
	ruff format --check .
	mypy

bench: $(STAMP)
	python -m bench.pipeline

bench-scale: $(STAMP)
	python -m bench.scale

bench-resume: $(STAMP)
	python -m bench.resume

bench-distributed: $(STAMP)
	python -m bench.distributed

bench-precision: $(STAMP)
	python -m bench.precision

# On a machine with a GPU: its checks and training throughput in one table (docs/scaling-out.md, Training on a GPU).
gpu-check: $(STAMP)
	python -m bench.gpu_check

# Sharing through the default DVC remote (docs/scaling-out.md): the run-cache, and every
# experiment's outputs with it (linreg.experiments.push says why).
push: $(STAMP)
	python -m linreg.experiments.push

pull: $(STAMP)
	dvc pull --run-cache

compare: $(STAMP)
	python -m linreg.experiments.compare --base "$$BASE" --fail-if "$$FAIL_IF" --metrics "$$METRICS"

sweep: $(STAMP)
	python -m linreg.experiments.sweep "$$GRID" --sort-by "$$SORT"

$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		--no-deps --no-build-isolation -e .
	touch $@

$(PLOTS_PAGE): $(STAMP) src/linreg/experiments/plots_page.py
	python -m linreg.experiments.plots_page $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache src/*.egg-info comparison
