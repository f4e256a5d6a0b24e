# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := -e libs/common -e services/ingest -e services/segmenter -e services/scoring -e services/campaigns -e '.[dev]'
MANIFESTS := pyproject.toml libs/common/pyproject.toml $(wildcard services/*/pyproject.toml)
# The browser tests drive a real Chromium: Debian's package, installed once (as root, or with sudo).
# Defined before the rules that name it: make expands a prerequisite list as it reads it.
CHROMIUM := /usr/bin/chromium

.PHONY: install run test lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: $(MANIFESTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PACKAGES)
	touch $@

run: install
	$(BIN)/cartera up

test: install $(CHROMIUM)
	$(BIN)/python -m pytest

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || \
	  ($(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && \
	   $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs/common/src services/*/src src

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
