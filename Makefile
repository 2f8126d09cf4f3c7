# Two commands do all the set-up from a clean clone:
#   make demo   -- create/refresh .venv, install memlearn, run the main job
#   make test   -- create/refresh .venv, install memlearn with its test extras, run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
TEST := $(VENV)/.installed-test

.PHONY: demo test lint format venv clean

venv: $(BASE)

$(BASE): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to 2.13.0 (CPU build) and installed first, so nothing pulls another build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The test extras: pytest, ruff, and Ray (its backend is tested against a local Ray instance).
$(TEST): $(BASE)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $@

demo: $(BASE)
	$(BIN)/memlearn demo

test: $(TEST)
	$(BIN)/python -m pytest -q

lint: $(TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
