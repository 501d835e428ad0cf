# driftline developer targets; `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Empty: the server's default, ./demo-models, which it builds on first run (a repository named here must exist).
REPOSITORY ?=
# pytest processes for `make test`: most of the suite waits on servers it started, so two overlap well on 2 cores.
TEST_PROCESSES ?= 2

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# `pip install -e` rebuilds the Rust extension (minutes), so an install leaves a stamp in the venv and runs again
# only when what the build reads changes (Python sources are live in an editable install). install-dev's extras
# include the plain install, so it stamps both. `rust/` with a slash: find follows it when it is a symlink.
BUILD_INPUTS := pyproject.toml Cargo.toml Cargo.lock $(shell find rust/ -name '*.rs' -o -name '*.toml')
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev

$(INSTALLED): $(BUILD_INPUTS) | $(VENV)/bin/python
	$(PIP) install -q -e .
	touch $@

$(INSTALLED_DEV): $(BUILD_INPUTS) | $(VENV)/bin/python
	$(PIP) install -q -e '.[dev,torch,ray,evidently,mlflow]'
	touch $@ $(INSTALLED)

install: $(INSTALLED) ## install driftline (ONNX only) into .venv; again only when the build inputs change

install-dev: $(INSTALLED_DEV) ## install driftline with the torch, ray, evidently, mlflow and dev extras into .venv

serve: install ## start the server on the bundled demo repository at 127.0.0.1:8000
	$(VENV)/bin/driftline serve $(REPOSITORY)

build-dev: ## rebuild the Rust extension in place (release profile)
	$(VENV)/bin/maturin develop --release --skip-install

format: ## format Python and Rust
	$(VENV)/bin/ruff format python tests benchmarks examples deploy
	$(VENV)/bin/ruff check --fix python tests benchmarks examples deploy
	cargo fmt

lint-python:
	$(VENV)/bin/ruff check python tests benchmarks examples deploy
	$(VENV)/bin/ruff format --check python tests benchmarks examples deploy

lint-rust:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

lint: lint-python lint-rust ## ruff + rustfmt + clippy

typecheck: ## mypy --strict over the package, and stubtest of the Rust extension's hand-written stub
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m mypy.stubtest driftline._core

tools: ## system tools the tests drive (wrk for benchmarks, chromium for the /docs page, prometheus and promtool for /metrics, postgresql for the store, haproxy for the replica tests), from Debian's packages when missing
	@missing=""; command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v haproxy >/dev/null || missing="$$missing haproxy"; \
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v prometheus >/dev/null && command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then if [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; \
		else echo "missing:$$missing and this is not root: sudo apt-get install$$missing"; fi; fi

test: install-dev tools ## install everything and run the whole suite (cargo test + pytest, slow and e2e included)
	cargo test --quiet
	$(VENV)/bin/python -m pytest -n $(TEST_PROCESSES) --dist loadfile

bench: install-dev ## run the benchmarks for real (timings, not just once)
	$(VENV)/bin/python -m pytest benchmarks --benchmark-enable --benchmark-columns=min,median,mean,ops,rounds

all: lint typecheck test ## everything CI checks

.PHONY: tools help install install-dev serve build-dev format lint-python lint-rust lint typecheck test bench all
