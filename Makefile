# petbind: `make demo` and `make test` each build their own virtual environment from the
# pinned dependency set (constraints.txt) in one pip resolver run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NIPYPE_NO_ET := 1

.PHONY: demo test bench bench-participant lock clean

$(BIN)/.petbind-installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(BIN)/.petbind-installed
	$(BIN)/petbind-demo

# two workers, a test file each at a time, in the order of collection (tests/conftest.py puts
# the slow modules first, so that the two workers end together); the slowest tests are listed
# at the end, to see where CI's time goes
test: $(BIN)/.petbind-installed
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

bench: $(BIN)/.petbind-installed
	$(BIN)/python benchmarks/run.py

bench-participant: $(BIN)/.petbind-installed
	$(BIN)/python benchmarks/participant.py

lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e '.[test]'
	{ sed -n '1,2p' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache
