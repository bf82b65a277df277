# The two commands of the README's quick start: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install demo serve test lint
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/convohook demo

serve: $(VENV)/.installed
	$(VENV)/bin/convohook serve

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	cd bench && MYPYPATH=../src:../tests ../$(VENV)/bin/mypy --strict --config-file ../pyproject.toml *.py

test: lint
	scripts/test-services.sh
	$(VENV)/bin/pytest
