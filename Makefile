# `make repro` and `make test` work on a fresh clone: both create .venv from the pinned
# requirements first when it is missing or older than requirements.txt / pyproject.toml.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
# dvc.yaml's commands say `python`: the venv's must come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: repro test test-fast lint bench clean

repro: $(STAMP)
	dvc repro

test: $(STAMP) lint
	pytest

test-fast: $(STAMP)
	pytest -m "not slow"

lint: $(STAMP)
	ruff check .
	ruff format --check .

bench: $(STAMP)
	python bench/pipeline.py

$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		--no-deps --no-build-isolation -e .
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
