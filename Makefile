# make demo: a local virtualenv, the synthetic data, every pipeline stage end to end.
# make test: the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_CONFIG ?= configs/demo.yaml
PYTEST_ARGS ?=
RESULTS_ARGS ?=
# make test runs the tests in this many processes (pytest-xdist; each test process is single-threaded
# unless OMP_NUM_THREADS says otherwise, so 2 fill a 2-core machine); 0 runs them in this process
TEST_WORKERS ?= 2

.PHONY: demo test test-slow test-nlp results smoke-full install bench clean help

help:
	@echo "make demo   install into $(VENV), make synthetic data, run every stage on $(DEMO_CONFIG)"
	@echo "make test   install into $(VENV) and run the tests (under 10 minutes on 2 cores)"
	@echo "make test-slow  the slow tests: comparisons over seeds and centres, command-line runs (.ci/run runs both)"
	@echo "make test-nlp  install the nlp extra into $(VENV)-nlp and run its tests (tools/embed_codes.py)"
	@echo "make results  the neural figures of docs/results.md over 3 seeds (RESULTS_ARGS=--cv adds every centre held out)"
	@echo "make smoke-full  configs/full.yaml at its real shapes, every stage, a few people (bench/bench_full_size.py)"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make clean  remove $(VENV), data/demo and output/demo"

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "ppeye needs Python >= 3.11 (found $$($(PYTHON) --version 2>&1)); set PYTHON=..."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
		{ echo "could not create a virtualenv: on Debian/Ubuntu run 'apt-get install python3-venv'"; exit 1; }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

install: $(VENV)/.installed

demo: install
	$(PY) tools/demo.py -c $(DEMO_CONFIG)

test: install
	$(PY) -m pytest tests -m "not slow and not nlp" -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest tests -m "slow and not nlp" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# the nlp extra (PaddleNLP and what it pulls in) in its own virtualenv, so the others never carry it
$(VENV)-nlp/.installed: requirements.txt requirements-dev.txt requirements-nlp.txt setup.py
	@test -x $(VENV)-nlp/bin/python || $(PYTHON) -m venv $(VENV)-nlp
	$(VENV)-nlp/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-nlp.txt
	$(VENV)-nlp/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

test-nlp: $(VENV)-nlp/.installed
	$(VENV)-nlp/bin/python -m pytest tests -m nlp $(PYTEST_ARGS)

results: install
	$(PY) tools/results.py -c $(DEMO_CONFIG) $(RESULTS_ARGS)

smoke-full: install
	$(PY) bench/bench_full_size.py

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(VENV)-nlp data/demo output/demo output/demo_days output/demo_results output/demo_cv inference/demo
