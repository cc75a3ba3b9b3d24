# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PIP_VERSION := 26.3
# Hashed lock files compiled from pyproject.toml by `make lock` (config/requirements/lock.py).
LOCK_FILES := config/requirements/base.txt config/requirements/dev.txt config/requirements/test.txt

.PHONY: run test lint install lock services-deps console console-client openapi openapi-check h5 clean

# test.txt holds the dependencies and the dev, test (and lint) extras, every file pinned by hash.
$(STAMP): pyproject.toml $(LOCK_FILES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --require-hashes -r config/requirements/test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# After changing a pin in pyproject.toml: re-compile the lock files (pins already there are kept).
# LOCK_ARGS go to pip-compile, e.g. make lock LOCK_ARGS="--upgrade-package requests". It needs only
# pip-tools (the version pyproject pins), not an install from the lock files it is about to replace.
PIP_TOOLS := $(shell grep -o 'pip-tools==[^"]*' pyproject.toml)
lock:
	@test -x $(BIN)/pip-compile || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet pip==$(PIP_VERSION) '$(PIP_TOOLS)'; }
	$(BIN)/python config/requirements/lock.py $(LOCK_ARGS)

run: $(STAMP)
	$(BIN)/python -m app.cli.devstack

# The admin console (admin_api/web): `make run` builds it when missing or stale; these do it on demand.
console: $(STAMP)
	$(BIN)/python -m app.cli.console_build build

# After an admin API change: dump its OpenAPI document into the console and regenerate the typed client.
console-client: $(STAMP)
	$(BIN)/python -m app.cli.console_build client

# After an API change: write the platform's OpenAPI document (flask-smorest's `flask openapi write`) where it is
# committed; `make lint` and tests/api/test_openapi_document.py fail while the committed one differs from it.
OPENAPI_DOC := app/api/openapi.json
openapi: $(STAMP)
	$(BIN)/flask --app wsgi openapi write $(OPENAPI_DOC)

openapi-check: $(STAMP)
	@$(BIN)/flask --app wsgi openapi print | diff -q $(OPENAPI_DOC) - >/dev/null || \
		{ echo "$(OPENAPI_DOC) is not what the app publishes: run \`make openapi\` and commit it"; exit 1; }

# The H5 pages imitating the mini-program (mini_program_mock/h5/web), served by the sandbox at /h5/: `make run`
# builds them when missing or stale; this does it on demand.
h5: $(STAMP)
	$(BIN)/python -m mini_program_mock.h5.build

# The tests start a throwaway PostgreSQL (as the postgres user) and a real redis-server themselves.
services-deps:
	@command -v redis-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

# Static checks: ruff (style, bugs, imports), import-linter (the layers and package contracts of pyproject.toml) and
# the committed OpenAPI document (openapi-check).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	@$(MAKE) --no-print-directory openapi-check

test: $(STAMP) services-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf var .pytest_cache
