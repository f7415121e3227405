# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make demo   # simulate a rig, train, export, serve, drive it with sensors dropping out
#   make test   # install (if needed) and run the test suite
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SYSSTAMP := $(VENV)/.system-stamp
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
PYTEST_ARGS ?=
PROBE_ARGS ?=

.PHONY: install system-deps test test-all test-slow demo lint typecheck proto bench native-probe clean

install: $(STAMP) $(SYSSTAMP)

# torch is pinned and installed first on its own: the pin selects the cached CPU
# build; letting the resolver pick one pulls gigabytes of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[train,serve,dev]'
	touch $@

# Debian packages the tests use for real: Prometheus (promtool and the server) and
# libb64, which Triton's perf_analyzer (shipped in the tritonclient wheel) links against.
$(SYSSTAMP):
	@mkdir -p $(VENV)
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null \
	    || ! /sbin/ldconfig -p | grep -q libb64.so.0d; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    prometheus libb64-0d >/dev/null; \
	fi
	touch $@

system-deps: $(SYSSTAMP)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

test-slow: install
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

test-all: install
	$(BIN)/pytest -m '' $(PYTEST_ARGS)

demo: install
	$(BIN)/rigserve demo

lint: install
	$(BIN)/ruff check .

# mypy sees the mapped packages through a link farm shaped like the installed namespace.
typecheck: install
	@rm -rf build/typecheck && mkdir -p build/typecheck/rigserve
	@for f in rigserve/*.py; do ln -s ../../../$$f build/typecheck/$$f; done
	@for d in sensors export server proto; do ln -s ../../../$$d build/typecheck/rigserve/$$d; done
	cd build/typecheck && ../../$(BIN)/mypy -p rigserve.sensors -p rigserve.export -p rigserve.server

proto: install
	$(BIN)/python -m rigserve.proto.build

# Not part of rigserve, its tests or CI: what a native C++ gRPC front end costs per
# ModelInfer at concurrency 1 beside Python's (tools/native_grpc_probe/README.md).
# Takes a few minutes; needs .demo/repo (`make demo`). PROBE_ARGS go to probe.py.
native-probe: install
	@if ! command -v protoc >/dev/null || ! command -v grpc_cpp_plugin >/dev/null \
	    || ! pkg-config --exists grpc++ protobuf 2>/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev pkg-config >/dev/null; \
	fi
	tools/native_grpc_probe/build.sh
	$(BIN)/python tools/native_grpc_probe/probe.py $(PROBE_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .mypy_cache
