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

# The speed targets in one run (docs/benchmarks.md); each script exits non-zero below its target.
bench: $(STAMP)
	rc=0; \
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_phy.py || rc=1; \
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_link.py || rc=1; \
	$(PY) benchmarks/bench_first_run.py || rc=1; \
	exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
