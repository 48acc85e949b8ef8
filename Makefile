# introdetect: the two commands.
#   make demo  - environment + demo dataset + the whole DVC pipeline
#   make test  - environment + the test suite
# uv is bootstrapped with pip when it is missing.

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(shell python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/uv
endif
PYTEST_ARGS ?=

.PHONY: env demo test test-all lint bench clean

$(UV):
	python3 -m pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	touch $@

env: .venv/.synced

demo: env
	$(UV) run dvc repro
	@echo; echo "== metrics/eval.json (demo test splits) =="; $(UV) run introdetect metrics

test: env
	$(UV) run pytest $(PYTEST_ARGS)

test-all: env
	$(UV) run pytest -m "" $(PYTEST_ARGS)

lint: env
	$(UV) run ruff check . && $(UV) run ruff format --check .

clean:
	rm -rf data models predictions dvclive detect_out
