# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create or reuse .venv, install torch only when it is not importable (so a machine with
# its own CUDA build keeps it), then the project with its test extra.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
DATA ?= $(if $(FEWSHOT_DATA_DIR),$(FEWSHOT_DATA_DIR),../shared/data)
# Absolute, so that tests and notebooks running from other folders find the same data.
DATA_ABS := $(abspath $(DATA))

.PHONY: setup demo test lint bench-featurize

$(PY):
	$(PYTHON) -m venv $(VENV)

setup: $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[test]"

demo: setup
	FEWSHOT_DATA_DIR=$(DATA_ABS) $(VENV)/bin/fewshot-apps bench --suite demo --preset fast --out runs/demo

test: setup
	$(VENV)/bin/ruff check .
	FEWSHOT_DATA_DIR=$(DATA_ABS) $(PY) -m pytest

bench-featurize: setup
	FEWSHOT_DATA_DIR=$(DATA_ABS) $(PY) benchmarks/featurize_fsmol.py
