# `make demo` and `make test` each create or refresh .venv, install everything, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGIN_CFGS := $(wildcard channels/*/setup.cfg filetypes/*/setup.cfg plugins/*/setup.cfg hooks/*/setup.cfg)

.PHONY: demo test fuzz bench venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: $(BIN)/python requirements.txt setup.cfg $(PLUGIN_CFGS)
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/esomp demo

# The import contracts in .importlinter first (docs/plugins.md, "Boundaries"), then every test.
test: venv
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

# The fuzz targets, longer than in `make test`: ESOMP_FUZZ_EXAMPLES examples per target.
fuzz: venv
	ESOMP_FUZZ_EXAMPLES=$${ESOMP_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest -q -m fuzz

bench: venv
	$(BIN)/esomp bench

clean:
	rm -rf $(VENV) demo-site
