VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test lint bench clean services

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[dev]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(VENV)/bin/imagegate serve $(ARGS)

services:
	@bash scripts/services.sh

test: $(DEVSTAMP) services
	@command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
		|| echo "test: chromium not installed; the console browser tests will fail"
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src

bench: $(DEVSTAMP)
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1) \
		|| echo "bench: wrk not installed; using the Python load generator"
	$(PY) -m bench.run $(ARGS)

clean:
	rm -rf $(VENV) .imagegate .pytest_cache .mypy_cache .ruff_cache
