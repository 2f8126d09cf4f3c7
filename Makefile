# Two commands do all the set-up from a clean clone:
#   make demo   -- create/refresh .venv, install memlearn, run the main job
#   make test   -- create/refresh .venv, install memlearn with its test extras, run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
TEST := $(VENV)/.installed-test

# torch is pinned to 2.13.0 and installed first, so nothing pulls another build. Which build:
# - a torch 2.13.0 wheel already on this machine (pip's find-links, as on CI) is used as is,
#   without asking any index;
# - otherwise, on Linux, the CPU build from PyTorch's CPU index: PyPI's Linux torch is the CUDA
#   build and pulls several GB of nvidia-* wheels; elsewhere (macOS, Windows) PyPI's wheel is
#   the CPU build and the default index is used;
# - TORCH_INDEX_URL=<index> always installs from that index instead, e.g.
#   make demo TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128    (a CUDA build)
#   make demo TORCH_INDEX_URL=https://pypi.org/simple                   (PyPI's build)
TORCH_VERSION := 2.13.0
TORCH_CPU_INDEX_URL := https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=

.PHONY: demo test lint format venv clean

venv: $(BASE)

$(BASE): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@set -e; pip="$(BIN)/python -m pip install --quiet"; torch="torch==$(TORCH_VERSION)"; \
	index="$(TORCH_INDEX_URL)"; \
	if [ -z "$$index" ] && $$pip --no-index --no-deps "$$torch" >/dev/null 2>&1; then \
	  echo "torch $(TORCH_VERSION): a wheel found on this machine"; \
	else \
	  if [ -z "$$index" ] && [ "$$(uname -s)" = Linux ]; then index="$(TORCH_CPU_INDEX_URL)"; fi; \
	  if [ -n "$$index" ]; then \
	    echo "torch $(TORCH_VERSION) from $$index"; \
	    hint="choose another index with TORCH_INDEX_URL=<url> (see the Makefile)"; \
	    $$pip --index-url "$$index" "$$torch" \
	      || { echo "error: cannot install $$torch from $$index; $$hint" >&2; exit 1; }; \
	  fi; \
	fi
	# torch's own dependencies (and torch itself where no index was chosen), default index.
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
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
