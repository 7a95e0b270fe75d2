# The two commands: `make demo` starts the app with the digits demo, `make test` runs the tests.
# Both create .venv and install everything on first use (Python 3.11+).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch: an unpinned torch pulls several GB of CUDA packages.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint install bench bench-postgres clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev,embeddings]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/workbench demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

# ruff's lint rules and format (pyproject.toml [tool.ruff]); `ruff format .` and `ruff check --fix .` mend most findings.
lint: $(VENV)/.installed
	$(BIN)/ruff check workbench strategies tests
	$(BIN)/ruff format --check workbench strategies tests
	$(BIN)/mypy

# The benchmark figures quoted in the README (minutes; not part of the tests).
bench: $(VENV)/.installed
	mkdir -p bench-results
	$(BIN)/workbench bench query --pool 1000000 --dim 768 --classes 2 --json bench-results/query-768.json
	$(BIN)/workbench bench query --pool 1000000 --dim 64 --classes 10 --json bench-results/query-64.json
	$(BIN)/workbench bench import --rows 1000000
	$(BIN)/workbench bench claims --pool 1000000 --annotators 16 --submits 60 --think-ms 500 1500 --during-rounds --json bench-results/claims-sqlite.json
	$(BIN)/workbench bench claims --pool 1000000 --annotators 16 --submits 200 --during-rounds --json bench-results/claims-sqlite-fast.json
	$(BIN)/workbench bench round --json bench-results/round.json
	$(BIN)/workbench stress --annotators 32 --items 5000 --json bench-results/stress-sqlite.json
	$(BIN)/python -m workbench.bench.ui

# The same on PostgreSQL (the database must exist: createdb -h 127.0.0.1 -U postgres workbench_bench).
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/workbench_bench
bench-postgres: $(VENV)/.installed
	mkdir -p bench-results
	$(BIN)/workbench bench import --rows 1000000 --db $(PG_URL)
	$(BIN)/workbench bench claims --pool 1000000 --annotators 16 --submits 40 --think-ms 500 1500 --db $(PG_URL) --json bench-results/claims-postgres.json
	$(BIN)/workbench --database-url $(PG_URL) stress --annotators 32 --items 5000 --json bench-results/stress-postgres.json

clean:
	rm -rf $(VENV) .workbench bench-results
