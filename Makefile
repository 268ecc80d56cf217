# conveyor — two commands: `make run` (start the whole service) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Two pytest-xdist workers; tests/conftest.py keeps each module on one worker and every
# module that uses the shared Redis/RabbitMQ on the same one. `make test PARALLEL=` runs serially.
PARALLEL ?= -n 2 --dist loadgroup --no-loadscope-reorder
# schemathesis gives every API operation the same node id: under xdist only one of them
# per test would run, so the fuzz module runs in a pytest of its own
FUZZ := tests/unit/test_api_fuzz.py

.PHONY: install run test lint typecheck unit integration acceptance browser browser-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start API + worker + scheduler on the embedded default (filesystem broker, SQLite) under ./var
run: install
	$(VENV)/bin/conveyor up

lint: install
	$(VENV)/bin/ruff check conveyor tests examples
	$(VENV)/bin/ruff format --check conveyor tests examples

typecheck: install
	$(VENV)/bin/mypy --strict conveyor
	$(VENV)/bin/mypy --strict examples

## Debian's Chromium for the browser tests (never a browser downloaded by Playwright)
browser-deps:
	command -v chromium || (apt-get update && apt-get install -y chromium)

## ruff + mypy --strict + every test tier
test: lint typecheck browser-deps
	$(VENV)/bin/pytest tests -q $(PARALLEL) --ignore=$(FUZZ)
	$(VENV)/bin/pytest $(FUZZ) -q

unit: install
	$(VENV)/bin/pytest tests/unit -q $(PARALLEL) --ignore=$(FUZZ)
	$(VENV)/bin/pytest $(FUZZ) -q

integration: install
	$(VENV)/bin/pytest tests/integration -q $(PARALLEL)

acceptance: install
	$(VENV)/bin/pytest tests/acceptance -q

browser: install browser-deps
	$(VENV)/bin/pytest tests/browser -q

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
