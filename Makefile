# The two commands a newcomer needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
CONFIG ?= config.yaml

.PHONY: run test lint bench soak clean

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.runtime
	$(VENV)/bin/cliproxy --config $(CONFIG)

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q

bench: $(VENV)/.test
	$(PY) bench/run.py

# Ten minutes of faulty upstreams under mixed traffic; `make soak ARGS="--minutes 1"` for less.
soak: $(VENV)/.test
	$(PY) bench/soak/soak.py $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
