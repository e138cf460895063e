# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv (Python 3.11) and installs the project when missing;
# quick when it is already there.
PY ?= $(shell command -v python3.11 || echo python3)
VENV := .venv
STAMP := $(VENV)/.installed
OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	@test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	bash scripts/install-system-deps.sh
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(VENV)/bin/factory demo --out $(OUT)

test: venv
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

bench: venv
	$(VENV)/bin/python benchmarks/shards.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
