# Every target sets itself up: `make test` and `make sweep` work on a fresh machine. Set-up ends
# by compiling the numba kernels into numba's on-disk cache (lowprec.warm), the serial ones and
# their parallel twins (what a trial of several threads, and the tests' two threads, call), so
# that a sweep's first trials and the tests do not each compile them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SPEC   ?= search_spaces/bits.yaml

.PHONY: install system-deps test test-fast sweep smoke lint format bench gpu-check clean faults notebook

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(BIN)/python -m lowprec.warm --threads 1,2
	touch $(STAMP)

install: $(STAMP)

# Optional Debian packages: Chromium (the report's browser test), Fashion-MNIST (OOD checks) and
# PostgreSQL (the cluster's tracking server, tests/orchestrator/test_postgres_tracking.py).
# Tests that need them skip cleanly without them; CI installs them.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  dpkg -s chromium dataset-fashion-mnist postgresql >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist postgresql >/dev/null; }; \
	else echo "system-deps: not root or no apt-get; skipping (browser, Fashion-MNIST and PostgreSQL tests will skip)"; fi

# Two pytest-xdist workers (WORKERS=1: the suite in one process). A test file runs whole on one
# worker (--dist loadfile): its module-scoped fixtures (a Ray started in the test process, a
# cluster, a real sweep, a server) are set up once; each worker starts its own local Rays.
# (--dist loadgroup would group finer, but pytest-xdist 3.8 tags a group by rewriting
# item._nodeid, which pytest 9.2 no longer reads: every test went to any worker.)
WORKERS ?= 2
XDIST    = $(if $(filter-out 0 1,$(WORKERS)),-n $(WORKERS) --dist loadfile,)

# The simulated clusters (marker `alone`) run after the parallel part, on a machine they have
# to themselves: under a second worker's load a removed node's death was detected late enough
# for Tune to give up on a trial it had retried there.
test: install
	$(BIN)/python -m pytest $(XDIST) -m "not alone"
	$(BIN)/python -m pytest -m alone

test-fast: install
	$(BIN)/python -m pytest $(XDIST) -m "not slow and not alone"

sweep: install
	$(BIN)/python -m orchestrator.sweep $(SPEC)

smoke: install
	$(BIN)/python -m orchestrator.sweep search_spaces/smoke.yaml

# The analysis notebook in JupyterLab (the optional extra), on the default sweep's results.
notebook: install
	$(BIN)/python -m pip install --quiet -e '.[notebook]'
	$(BIN)/jupyter lab analysis/notebooks/pareto.ipynb

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench.quantize
	$(BIN)/python -m bench.step
	$(BIN)/python -m bench.chains
	$(BIN)/python -m bench.resnet
	$(BIN)/python -m bench.sweep
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.answer

# On a machine with a CUDA device: the CUDA tests and the GPU benchmarks in one run, the figures
# against their bars (outputs in gpu-check/; bench/gpu.py).
gpu-check: install
	$(BIN)/python -m bench.gpu

# Every injected fault and bad input (tests/faults), then the table of docs/reliability.md.
FAULTS_LOG ?= results/faults.jsonl
faults: install
	mkdir -p $(dir $(FAULTS_LOG)) && rm -f $(FAULTS_LOG)
	FAULTS_LOG=$(abspath $(FAULTS_LOG)) $(BIN)/python -m pytest tests/faults -m faults -q -p no:cacheprovider
	$(BIN)/python -m tests.faults.conftest $(FAULTS_LOG)

clean:
	rm -rf $(VENV) results mlflow.db .pytest_cache
