# Centinela — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Where `make run` keeps the data, registry and ledger it creates on first start.
VAR ?= var
PROTO_SRC := $(wildcard proto/centinela/v1/*.proto)
PB_DIR := server/pb

.PHONY: help install proto proto-check lint format typecheck test bench bench-peers fuzz run clean \
	deploy-files client-protos

help: ## List every target with what it does
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,dask]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install Centinela with its dev tools and the dask extra

# protoc writes imports as `from centinela.v1 import x_pb2`; the stubs live in server/pb, so the
# one sed below makes those imports package-relative. Nothing else touches generated files.
define gen_proto
	rm -rf $(1) && mkdir -p $(1)/_out
	PATH=$(abspath $(BIN)):$$PATH $(PY) -m grpc_tools.protoc -Iproto \
		--python_out=$(1)/_out --pyi_out=$(1)/_out --grpc_python_out=$(1)/_out \
		--mypy_grpc_out=$(1)/_out $(PROTO_SRC)
	mv $(1)/_out/centinela/v1/* $(1)/ && rm -rf $(1)/_out
	sed -i 's/^from centinela\.v1 import/from . import/' $(1)/*.py $(1)/*.pyi
	printf '"""Generated from proto/centinela/v1 by `make proto`. Do not edit."""\n' > $(1)/__init__.py
endef

proto: $(STAMP) ## Regenerate the gRPC/protobuf stubs in server/pb from proto/
	$(call gen_proto,$(PB_DIR))

proto-check: $(STAMP) ## Fail if server/pb is stale with respect to proto/
	$(call gen_proto,$(VAR)/.proto-check)
	@diff -r $(PB_DIR) $(VAR)/.proto-check -x __pycache__ \
		|| (echo "server/pb is stale: run 'make proto' and commit" && exit 1)
	@rm -rf $(VAR)/.proto-check && echo "proto-check: generated code is up to date"

lint: $(STAMP) ## Ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy --strict over the packages
	$(BIN)/mypy

test: $(STAMP) ## Set up and run the whole test suite
	$(BIN)/pytest -q

bench: $(STAMP) ## Benchmarks: figures and ratios against a baseline in the same run
	$(PY) -m bench $(BENCH_ARGS)

# The peers `python -m bench peers` measures Centinela against: Seldon MLServer with its LightGBM
# runtime, in a virtualenv of its own (its pins clash with ours). uvloop 0.21: MLServer's
# workers crash with 0.23. Never part of `make test`; `make clean` removes it with var/.
PEERS_VENV := $(VAR)/bench-peers/venv
PEERS_STAMP := $(PEERS_VENV)/.installed
$(PEERS_STAMP):
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet 'mlserver==1.7.1' 'mlserver-lightgbm==1.7.1' 'uvloop==0.21.*'
	@touch $@

bench-peers: $(PEERS_STAMP) ## Set up MLServer in var/bench-peers/venv for `make bench` to compare

# `make test` runs the same file at 600 requests; this prints the tally (by kind and status).
FUZZ_COUNT ?= 10000
fuzz: $(STAMP) ## Full fuzz run: 10,000+ malformed requests against a real server
	CENTINELA_FUZZ_COUNT=$(FUZZ_COUNT) $(BIN)/pytest -q -s tests/test_fuzz.py

# deploy/grafana/centinela.json and deploy/centinela.example.yaml are generated and checked in;
# tests/test_dashboard.py and tests/test_deploy.py fail when they are stale.
deploy-files: $(STAMP) ## Regenerate the Grafana dashboard and the example settings in deploy/
	$(PY) deploy/grafana/build_dashboard.py
	$(PY) deploy/build_settings_example.py

# The client kit's protos: Centinela's contract and google/rpc's Status and error details (from
# googleapis-common-protos). grpc/health/v1/health.proto is checked in (see clients/README.md).
client-protos: $(STAMP) ## Copy the protos clients need into clients/proto
	cp $(PROTO_SRC) clients/proto/centinela/v1/
	cp "$$($(PY) -c 'import os, google.rpc.status_pb2 as m; print(os.path.dirname(m.__file__))')"/{status,error_details}.proto \
		clients/proto/google/rpc/

run: $(STAMP) ## Set up, create data and a model if none exist, and serve on 127.0.0.1:50051
	$(BIN)/centinela serve --bootstrap

clean: ## Remove the virtualenv, caches and var/
	rm -rf $(VENV) $(VAR) .pytest_cache .mypy_cache .ruff_cache *.egg-info
