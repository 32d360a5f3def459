# hdlgen: `make build` and `make test` do all set-up themselves (a venv in .venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BOARD  ?= kc705
MODEL  ?=
ARGS   ?=
FUZZ_COUNT ?= 200
FUZZ_SEED  ?= 1

.PHONY: install icarus build test test-fast bench fuzz lint clean distclean

install: $(STAMP) icarus

# Icarus Verilog, the second simulator of the tests (Debian's package; as root where missing).
# Without it those tests are skipped, and pytest says so.
icarus:
	@command -v iverilog >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -q iverilog >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && \
	    apt-get install -y -q iverilog >/dev/null 2>&1; }; }; } || \
	  echo "note: Icarus Verilog (iverilog) is not installed and could not be installed here; its tests will be skipped"

# torch is installed first and pinned exactly: its local CPU wheel, no CUDA downloads.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

build: install
	$(BIN)/python -m hdlgen build --board $(BOARD) $(if $(MODEL),--model $(MODEL)) --out build/$(BOARD) $(ARGS)

# A crash in native code (a signal) ends pytest without a summary: name the test it died in.
CURRENT_TEST := build/pytest-current-test
test: install
	@mkdir -p build; rm -f $(CURRENT_TEST)
	@HDLGEN_CURRENT_TEST_FILE=$(CURRENT_TEST) $(BIN)/python -X faulthandler -m pytest -q $(ARGS); rc=$$?; \
	if [ $$rc -gt 128 ] && [ -f $(CURRENT_TEST) ]; then \
	  echo "error: the test suite died of signal $$((rc - 128)) in $$(cat $(CURRENT_TEST))" >&2; fi; exit $$rc

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

bench: install
	$(BIN)/python -m hdlgen.bench --out build/bench $(ARGS)

# Random networks through golden model and Verilator; summary in build/fuzz/summary.md.
# FUZZ_SECONDS=600 runs for a time instead of a count.
fuzz: install
	$(BIN)/python -m hdlgen.fuzz_campaign $(if $(FUZZ_SECONDS),--seconds $(FUZZ_SECONDS),--count $(FUZZ_COUNT)) --seed $(FUZZ_SEED) --out build/fuzz

clean:
	rm -rf build .pytest_cache sim_build
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
