# hdlgen: `make build` and `make test` do all set-up themselves (a venv in .venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BOARD  ?= kc705
MODEL  ?=
ARGS   ?=

.PHONY: install build test test-fast bench fuzz lint clean distclean

install: $(STAMP)

# torch is installed first and pinned exactly: its local CPU wheel, no CUDA downloads.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

build: install
	$(BIN)/python -m hdlgen build --board $(BOARD) $(if $(MODEL),--model $(MODEL)) --out build/$(BOARD) $(ARGS)

test: install
	$(BIN)/python -m pytest -q $(ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

bench: install
	$(BIN)/python -m hdlgen.bench --out build/bench $(ARGS)

clean:
	rm -rf build .pytest_cache sim_build
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
