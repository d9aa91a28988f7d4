# Two commands on a fresh machine: `make demo` and `make test`. Both create the virtual
# environment and install everything first.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[ray,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/semsim run scenarios/demo.toml

test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/bench_link.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
