# `make repro` and `make test` work on a fresh clone: each creates .venv when it is missing and
# installs what its job needs, pinned with hashes: the pipeline's packages
# (requirements/pipeline.txt) for repro, pull, push, compare and sweep; the test and lint tools
# as well (requirements/dev.txt) for test, lint, dev and the benchmarks. torch: the build that
# fits this machine (tools/torch_build.py), or the one TORCH names (cpu, cu130, ...).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PIP := $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check
# Stamps: the venv holds the pinned packages of each set
PIPELINE := $(VENV)/.pipeline
DEV := $(VENV)/.dev
# dvc.yaml's commands say `python`: the venv's must come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export TORCH

# make compare BASE=main FAIL_IF='test_mae>+5%' METRICS=test_mae,test_r2
BASE ?= main
FAIL_IF ?=
METRICS ?= test_mae,test_rmse,test_r2
# make sweep GRID='train.lr=0.001,0.01,0.1 train.epochs=100,200' SORT=test_mae MAX_POINTS=100
GRID ?= train.lr=0.001,0.01,0.1
SORT ?= test_mae
MAX_POINTS ?= 100
# Handed to the commands through the environment, so that no quote in them can break a recipe,
# and as given: $(value) keeps make from expanding a $ in them (a $(shell ...) runs nothing).
override BASE := $(value BASE)
override FAIL_IF := $(value FAIL_IF)
override METRICS := $(value METRICS)
override GRID := $(value GRID)
override SORT := $(value SORT)
override MAX_POINTS := $(value MAX_POINTS)
export BASE FAIL_IF METRICS GRID SORT MAX_POINTS

.PHONY: pipeline dev lock repro test test-fast test-stress lint bench bench-scale bench-resume bench-distributed bench-precision gpu-check compare sweep push pull clean

# npm ci's record of what it installed: present once tests/js/node_modules is up to date.
TEST_JS := tests/js/node_modules/.package-lock.json

# The page `dvc plots show` and `dvc plots diff` fill (.dvc/config: plots.html_template): Vega
# inside it, so that the interactive charts draw offline (docs/experiments-and-ci.md). Every
# target writes it, so that no clone where make ran lacks it.
PLOTS_PAGE := .dvc/plots/page.html

# What every target needs first: the pipeline's packages, torch, and the plots page.
pipeline: $(PIPELINE) $(PLOTS_PAGE)
	@python -m tools.torch_build

# The same, and the test and lint tools (scikit-learn for examples/ too), and the JavaScript
# the browser tests run (mermaid, pinned with its hashes in tests/js/package-lock.json).
dev: $(DEV) pipeline $(TEST_JS)

repro: pipeline
	dvc repro

# The tests on every core (pytest-xdist), then the 15 slowest.
PYTEST := pytest -n auto --durations=15

test: dev lint
	$(PYTEST)

test-fast: dev
	$(PYTEST) -m "not slow"

# The whole suite three times in a row while a busy loop on every core competes with it: a
# test that depends on the machine's speed shows here. The load stops with the recipe.
test-stress: dev
	@pids=""; for core in $$(seq "$$(nproc)"); do \
		python -c 'while True: pass' & pids="$$pids $$!"; done; \
	trap 'kill $$pids' EXIT INT TERM; \
	for round in 1 2 3; do echo "== stress round $$round of 3"; $(PYTEST) -q || exit 1; done

lint: dev
	ruff check .
	ruff format --check .
	mypy

bench: dev
	python -m bench.pipeline

bench-scale: dev
	python -m bench.scale

bench-resume: dev
	python -m bench.resume

bench-distributed: dev
	python -m bench.distributed

bench-precision: dev
	python -m bench.precision

# On a machine with a GPU: its checks and training throughput in one table (docs/scaling-out.md, Training on a GPU).
gpu-check: dev
	python -m bench.gpu_check

# Sharing through the default DVC remote (docs/scaling-out.md): the run-cache, and every
# experiment's outputs with it (linreg.experiments.push says why).
push: pipeline
	python -m linreg.experiments.push

pull: pipeline
	dvc pull --run-cache

compare: pipeline
	python -m linreg.experiments.compare --base="$$BASE" --fail-if="$$FAIL_IF" --metrics="$$METRICS"

sweep: pipeline
	python -m linreg.experiments.sweep --sort-by="$$SORT" --max-points="$$MAX_POINTS" -- "$$GRID"

# Regenerate requirements/*.txt from pyproject.toml (tools/lock.py says how pins move).
lock: dev
	python -m tools.lock

$(PIPELINE): requirements/pipeline.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --require-hashes -r requirements/pipeline.txt
	$(PIP) --no-deps --no-build-isolation -e .
	touch $@

$(DEV): $(PIPELINE) requirements/dev.txt
	$(PIP) --require-hashes -r requirements/dev.txt
	touch $@

# From the npm registry, when npm is here; without it the tests that need it skip, saying so
# (and fail in CI, which always has it).
$(TEST_JS): tests/js/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix tests/js --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the Mermaid test will skip (install Node.js for it)"; fi

$(PLOTS_PAGE): $(PIPELINE) src/linreg/experiments/plots_page.py
	python -m linreg.experiments.plots_page $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache src/*.egg-info comparison tests/js/node_modules
