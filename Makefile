# The whole set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest demo clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/system-deps
	./scripts/system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# --no-deps: rapidocr would pull the GUI opencv-python beside the headless one, and
	# face_recognition would build dlib from source instead of using dlib-bin.
	$(BIN)/python -m pip install --quiet --no-deps rapidocr-onnxruntime==1.4.4 face_recognition==1.3.0
	touch $(STAMP)

lint: install
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

demo: install
	$(BIN)/clearance demo

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
