# `make demo` and `make test` work on a fresh machine: they create .venv and install the project.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test browser clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m flows.train --data examples/breast_cancer.csv --target diagnosis \
		--task classification --time-budget 60 --output results/demo

# The report and the Prefect UI are checked in a real browser: Debian's chromium (installed as
# root, or through sudo). Where that is impossible the browser tests say so and are skipped.
browser:
	@command -v chromium >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; } || \
		echo "warning: could not install chromium; the browser tests will be skipped"

test: $(VENV)/.installed browser
	$(PY) -m pytest

clean:
	rm -rf $(VENV) results .pytest_cache
