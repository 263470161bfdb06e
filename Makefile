# The whole set-up on a fresh machine: `make demo` and `make test`.
# Every Python package comes from uv.lock (hashes included); `make lock` changes it on purpose.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .uv
UV := $(TOOLS)/bin/uv
STAMP := $(VENV)/.installed
# uv never fetches a Python of its own, and never writes the lock unless asked (`make lock`).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Byte-compile at install, as pip does: faster first start, and no SyntaxWarning from old
# third-party sources at import time (the test suite turns warnings into errors).
export UV_COMPILE_BYTECODE := 1

.PHONY: install lock test lint typecheck pytest demo clean

install: $(STAMP)

$(UV): scripts/uv-requirements.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes --no-deps -r scripts/uv-requirements.txt
	touch $(UV)

$(STAMP): pyproject.toml uv.lock Makefile scripts/system-deps $(UV)
	./scripts/system-deps
	@$(UV) lock --check --quiet || { \
	  echo "error: uv.lock is out of date with pyproject.toml; run 'make lock' and commit uv.lock" >&2; \
	  exit 1; }
	$(UV) sync --locked --python $(PYTHON) --quiet || { \
	  echo "error: cannot install the locked set; if uv.lock is damaged, run 'make lock'" >&2; \
	  exit 1; }
	touch $(STAMP)

# Re-resolve on purpose: `make lock` keeps today's versions where pyproject.toml allows them;
# `make lock UPGRADE=name` moves one package to its newest allowed release, `UPGRADE=all` all.
lock: $(UV)
	$(UV) lock $(if $(filter all,$(UPGRADE)),--upgrade,$(if $(UPGRADE),--upgrade-package $(UPGRADE)))

lint: install
	$(BIN)/ruff format --check src tests bench verifier
	$(BIN)/ruff check src tests bench verifier

typecheck: install
	$(BIN)/mypy

# Three workers on two cores (pytest-xdist): much of the suite waits on sockets, fsync and
# subprocesses, so a third worker fills the waits. `make pytest PYTEST_WORKERS=0` runs serially.
PYTEST_WORKERS ?= 3
# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set (as on this project's machines):
# otherwise each worker and each `clearance` subprocess compiles every module again, and pytest
# rewrites every test module's asserts again (measured: collection 18.3 -> 15.3 s per process).
# loadgroup: the tests of the modules tests/conftest.py lists in TOGETHER run in one worker, in
# order, so that a costly module fixture (tests/scale's cluster of processes) is built once.
pytest: install
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

test: lint typecheck pytest

demo: install
	$(BIN)/clearance demo

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
