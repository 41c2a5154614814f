# fnbox — every target here is what CI runs (.ci/run calls `make lint` and `make test`).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JS_DIR := executor/fnbox/executor/js
STAMP := $(VENV)/.setup-stamp
# The V8 code caches of the runtime's context scripts: rebuilt when a script changes (a cache
# of another source is rejected, and workers then compile at every start).
CODE_CACHE := $(JS_DIR)/.codecache/.stamp
CODE_CACHE_SRC := $(wildcard $(JS_DIR)/runtime/context/*.js) $(JS_DIR)/runtime/codecache.js
PROTO_SRC := $(wildcard protos/fnbox/functions/v1/*.proto)
PYTEST_ARGS ?=

.PHONY: setup run test lint protos protos-check bench clean

# Creates the virtualenv, installs fnbox (editable) with its dev tools, and the Node runtime's
# packages with the Node that pip installed. Re-runs only when its inputs change.
setup: $(STAMP) $(CODE_CACHE)

$(STAMP): pyproject.toml $(JS_DIR)/package.json $(wildcard $(JS_DIR)/package-lock.json)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m fnbox.executor.install_js
	touch $(STAMP)

$(CODE_CACHE): $(STAMP) $(CODE_CACHE_SRC)
	$(PY) -m fnbox.executor.install_js --code-cache
	touch $(CODE_CACHE)

run: setup
	$(VENV)/bin/fnbox serve

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup protos-check
	$(VENV)/bin/ruff check server executor clients tests bench
	$(VENV)/bin/ruff format --check server executor clients tests bench
	$(VENV)/bin/mypy server/fnbox executor/fnbox clients/fnbox tests

protos: setup
	$(PY) -m grpc_tools.protoc -I protos -I $$($(PY) -c 'import os, google.rpc as r; print(os.path.dirname(os.path.dirname(r.__path__[0])))') \
		--python_out=clients --grpc_python_out=clients --pyi_out=clients $(PROTO_SRC)

# Fails when the committed generated code differs from what the protos generate.
protos-check: setup
	@tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -I protos -I $$($(PY) -c 'import os, google.rpc as r; print(os.path.dirname(os.path.dirname(r.__path__[0])))') \
		--python_out=$$tmp --grpc_python_out=$$tmp --pyi_out=$$tmp $(PROTO_SRC) && \
	diff -r -x __pycache__ -x __init__.py $$tmp/fnbox/functions/v1 clients/fnbox/functions/v1 \
		|| { echo "generated code is stale: run 'make protos' and commit"; rm -rf $$tmp; exit 1; }; \
	rm -rf $$tmp

bench: setup
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) $(JS_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache
