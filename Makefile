# make demo / make test: create .venv when no virtual environment is active,
# install remax_tf (which compiles the protos), then run. make test-fast leaves
# out the tests marked slow (they start subprocesses or train).
SHELL := /bin/bash
VENV ?= .venv
ifdef VIRTUAL_ENV
PYTHON := python
else
PYTHON := $(VENV)/bin/python
endif
PYTEST_ARGS ?= -q
DEMO_DIR ?= runs/demo

.PHONY: install test test-fast demo lint protos clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)

install: $(if $(VIRTUAL_ENV),,$(VENV)/bin/python)
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -e '.[test]'

test: install
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PYTHON) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: install
	$(PYTHON) -m remax_tf.demo --output_dir $(DEMO_DIR)

lint:
	$(PYTHON) -m ruff check remax_tf trainer tests benchmarks protos setup.py
	$(PYTHON) -m ruff format --check remax_tf trainer tests benchmarks protos setup.py

protos:
	$(PYTHON) protos/generate.py

clean:
	rm -rf build dist *.egg-info .pytest_cache
