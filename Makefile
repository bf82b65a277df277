# The two commands of the README's quick start: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3

# The demo needs only what convohook runs on; the checks and tests need the dev tools as well
# (Playwright, mypy, schemathesis…), which take a minute more to install. Each has its stamp.
$(VENV)/bin/python:
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-runtime: pyproject.toml | $(VENV)/bin/python
	@echo "==> installing convohook and what it runs on into $(VENV) (no dev tools)"
	$(VENV)/bin/pip install --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	@echo "==> installing convohook with its dev tools into $(VENV) (about a minute)"
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install demo serve test lint
install: $(VENV)/.installed

demo: $(VENV)/.installed-runtime
	$(VENV)/bin/convohook demo

serve: $(VENV)/.installed-runtime
	$(VENV)/bin/convohook serve

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	cd bench && MYPYPATH=../src:../tests ../$(VENV)/bin/mypy --strict --config-file ../pyproject.toml *.py
	# The tests, strict too; e2e apart, as its conftest.py and the top one share a module name.
	MYPYPATH=src:tests:tests/integration $(VENV)/bin/mypy --strict tests/conftest.py tests/harness.py tests/unit tests/integration
	MYPYPATH=src:tests:tests/e2e $(VENV)/bin/mypy --strict tests/e2e

# Two processes by default (pytest-xdist, a file per process at a time: the module-scoped servers
# and the session's deployments stay together); the suite took 18 minutes in one on 2 cores.
TEST_PROCESSES ?= 2

test: lint
	scripts/test-services.sh
	$(VENV)/bin/pytest -n $(TEST_PROCESSES) --dist loadfile
