# `make demo` and `make test` work on a fresh machine: they create .venv and install the project.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m flows.train --data examples/breast_cancer.csv --target diagnosis \
		--task classification --time-budget 60 --output results/demo

test: $(VENV)/.installed
	$(PY) -m pytest

clean:
	rm -rf $(VENV) results .pytest_cache
