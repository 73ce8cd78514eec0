# taskhub: `make run` sets up and serves the hub with the sample catalog; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The catalog `make run` indexes: SAMPLE when given, else ../shared/catalog-sample when present, else tektoncd/catalog.
SAMPLE ?=
HOST ?= 127.0.0.1
PORT ?= 8000
IMAGE ?= localhost/taskhub:latest
# The Python base of the image; empty: the Containerfile's (the public python:3.11-slim-bookworm).
BASE ?=
export TASKHUB_DATA_DIR ?= $(abspath var)

.PHONY: help setup run test lint format bench clean kube-apiserver debian-images image

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/taskhub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: $(BIN)/taskhub ## create the virtualenv and install taskhub with its test tools

run: setup ## index a catalog (SAMPLE, ../shared/catalog-sample or tektoncd/catalog), publish it to a local registry and index it back, serve on $(HOST):$(PORT)
	SAMPLE=$(SAMPLE) HOST=$(HOST) PORT=$(PORT) TASKHUB=$(BIN)/taskhub scripts/run-local

lint: setup ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## reformat the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

kube-apiserver: ## build the tests' kube-apiserver once, into ~/.cache/taskhub (scripts/build-kube-apiserver)
	@scripts/build-kube-apiserver >/dev/null

debian-images: ## build the tests' container images from Debian packages once, into ~/.cache/taskhub/images
	@if command -v podman >/dev/null; then scripts/build-debian-images >/dev/null; \
	else echo "podman is not installed: the container tests will be skipped"; fi

image: setup ## build taskhub's container image $(IMAGE) with podman (BASE=IMAGE: another Python base)
	PYTHON=$(BIN)/python scripts/build-image --tag $(IMAGE) $(if $(BASE),--base $(BASE))

# Four test processes: the tests mostly wait on the servers, registries and clusters they start, so on two CPUs
# four at once take the suite from 17 to 8 minutes (measured on this project's 2-CPU machines).
TEST_PROCESSES ?= 4

test: lint kube-apiserver debian-images ## lint, then the whole test suite on SQLite and PostgreSQL, browser tests included
	$(BIN)/pytest -q -n $(TEST_PROCESSES)

bench: setup ## benchmarks, each printed as a ratio to a peer measured in the same run (installs their peers: scripts/bench-tools)
	scripts/bench-tools
	$(BIN)/python bench/cli.py && $(BIN)/python bench/api.py && $(BIN)/python bench/registry.py && $(BIN)/python bench/resolve.py && $(BIN)/python bench/runs.py && $(BIN)/python bench/jobs.py && $(BIN)/python bench/scale.py && $(BIN)/python bench/events.py

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) var
