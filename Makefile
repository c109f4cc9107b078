# leaksonar: `make demo` and `make test` work on a fresh machine (they run `make setup` first).
VENV := .venv
BIN := $(VENV)/bin
LAB_DIR ?= .lab
LAB_BASE ?= 127.77.0.0
DEMO_PORT ?= 8080
export LEAKSONAR_SCOPE ?= 127.0.0.0/8

.PHONY: setup demo test test-fast bench lint format lab-down clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(BIN)/leaksonar lab status --dir $(LAB_DIR) >/dev/null 2>&1 \
	  && echo "lab already running in $(LAB_DIR)" \
	  || $(BIN)/leaksonar lab up --dir $(LAB_DIR) --base $(LAB_BASE)
	$(BIN)/leaksonar scan $(LAB_BASE)/24 --db $(LAB_DIR)/demo.db --jsonl $(LAB_DIR)/findings.jsonl \
	  --geo-db $(LAB_DIR)/lab-country.mmdb --asn-db $(LAB_DIR)/lab-asn.mmdb
	$(BIN)/leaksonar hosts --db $(LAB_DIR)/demo.db
	@echo "findings: $(LAB_DIR)/findings.jsonl; index: $(LAB_DIR)/demo.db; stop the lab: make lab-down"
	@echo "web UI: http://127.0.0.1:$(DEMO_PORT)/ on loopback only; visitors without a key see everything,"
	@echo "critical findings included (--anonymous analyst: demo only). Ctrl-C stops the server."
	$(BIN)/leaksonar serve --db $(LAB_DIR)/demo.db --host 127.0.0.1 --port $(DEMO_PORT) --anonymous analyst

test: setup lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python bench/suite.py

lint: setup
	$(BIN)/ruff check leaksonar tests bench
	$(BIN)/ruff format --check leaksonar tests bench
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format leaksonar tests bench
	$(BIN)/ruff check --fix leaksonar tests bench

lab-down:
	$(BIN)/leaksonar lab down --dir $(LAB_DIR)

clean: lab-down
	rm -rf $(VENV) build *.egg-info
