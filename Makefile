# One task runner. `make run` starts the router; `make test` runs every test (what CI runs).
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install run demo test test-unit test-under-load lint compose-config bench soak clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed  ## create .venv and install pinned dependencies

run: install  ## the whole stack locally: sandbox, web, worker, flower (Ctrl-C stops it)
	scripts/run-local

demo: install  ## send the example payloads to a running stack and show where each contact went
	$(PY) -m tools.demo

test: install  ## every test: unit, sandbox and integration (needs Redis; starts one if none answers)
	scripts/ensure-redis
	$(PY) -m pytest $(ARGS)

test-under-load: install  ## `make test` with every core kept busy by busy loops (the suite must still pass)
	scripts/ensure-redis
	scripts/test-under-load $(PY) -m pytest $(ARGS)

test-unit: install  ## the fast tests only (no Redis server, no processes)
	$(PY) -m pytest tests/unit tests/sandbox

bench: install  ## the performance benchmark, not part of `make test` (ARGS=--quick: a smoke run under 3 min)
	$(PY) -m bench.run_bench $(ARGS)

soak: install  ## the guarantee scenarios with ~6,000 webhooks across all faults; prints the table
	scripts/ensure-redis
	SOAK=1 $(PY) -m pytest tests/integration/test_guarantees.py -p no:randomly --timeout 1800

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

compose-config: install  ## validate docker-compose.yml with Docker Compose v2 (no engine needed)
	docker-compose -f docker-compose.yml config --quiet

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
