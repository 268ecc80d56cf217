# conveyor — two commands: `make run` (start the whole service) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

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
	$(VENV)/bin/ruff check conveyor tests examples bench
	$(VENV)/bin/ruff format --check conveyor tests examples bench

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

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[dev,bench]"
	# arq pins redis<6 while Celery 5.7 needs redis>=6: installed without its pin (runs on redis-py 8)
	$(PY) -m pip install -q --no-deps "arq>=0.26,<1"
	touch $(BENCH_STAMP)

## The benchmark suite (issue #11): conveyor vs plain Celery vs Dramatiq, RQ, Huey, Taskiq, arq.
## Not part of `make test`. FLUSHES the Redis database it is given; BENCH_ARGS=--quick for a short run.
bench: $(BENCH_STAMP)
	$(PY) -m bench.suite --redis-url "$${CONVEYOR_BENCH_REDIS_URL:-redis://127.0.0.1:6379/15}" $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
